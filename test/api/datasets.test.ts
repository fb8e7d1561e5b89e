import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { encodeIdx } from '../../src/data/idx.ts';
import { loadMnist } from '../../src/data/mnist.ts';
import { writeFixtureVersion } from '../helpers/fixture-model.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { multipart, type Part } from '../helpers/multipart.ts';
import { buildPng } from '../helpers/png.ts';
import { makeZip } from '../helpers/zip.ts';

let api: TestApi;
let zip: Buffer;
before(async () => {
  // Room for the few small datasets these tests keep (~32 kB each), not for a 100-digit one besides.
  api = await startTestApi({ UPLOAD_MAX_BYTES: String(2 * 1024 * 1024), DATASETS_MAX_BYTES: '100000' });
  const digits = await mnistTestPngs(40);
  zip = makeZip(digits.map((d, i) => ({ name: `${d.label}/${i}.png`, data: d.png })));
});
after(() => api.close());

const postZip = (body: Buffer) => api.app.inject({ method: 'POST', url: '/v1/datasets', headers: { 'content-type': 'application/zip' }, payload: body });
const stored = async () => (await readdir(api.config.datasetsDir).catch(() => [] as string[])).sort();

test('an ImageFolder ZIP becomes a dataset with per-class counts and a sha256', async () => {
  const res = await postZip(zip);
  assert.equal(res.statusCode, 201, res.body);
  const ds = res.json();
  assert.equal(res.headers.location, `/v1/datasets/${ds.id}`);
  assert.equal(ds.count, 40);
  assert.equal(ds.format, 'imagefolder');
  assert.equal(ds.classCounts.reduce((a: number, b: number) => a + b, 0), 40);
  assert.match(ds.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual((await api.app.inject({ url: `/v1/datasets/${ds.id}` })).json(), ds);
  assert.ok((await api.app.inject({ url: '/v1/datasets' })).json().items.some((d: { id: string }) => d.id === ds.id));
});

test('a ZIP as a multipart file, with a name', async () => {
  const others = await mnistTestPngs(20, 40);
  const data = makeZip(others.map((d, i) => ({ name: `${d.label}/${i}.png`, data: d.png })));
  const form = multipart([{ name: 'name', data: 'my handwriting' }, { name: 'file', filename: 'digits.zip', contentType: 'application/zip', data }]);
  const res = await api.app.inject({ method: 'POST', url: '/v1/datasets', ...form });
  assert.equal(res.statusCode, 201, res.body);
  assert.equal(res.json().name, 'my handwriting');
});

test('the same content again, as a ZIP or as an IDX pair, answers 200 with the stored dataset and stores no copy', async () => {
  const first = await postZip(zip);
  const before = await stored();
  const again = await postZip(zip);
  assert.equal(again.statusCode, 200, again.body);
  assert.deepEqual(again.json(), first.json());
  assert.equal(again.headers.location, `/v1/datasets/${first.json().id}`);
  // The same 40 digits and labels as MNIST ships them: the same preprocessed content.
  const test = await loadMnist('test');
  const form = multipart([
    { name: 'images', filename: 'images.idx', data: encodeIdx([40, 28, 28], test.images.subarray(0, 40 * 784)) },
    { name: 'labels', filename: 'labels.idx', data: encodeIdx([40], test.labels.subarray(0, 40)) },
  ]);
  const asIdx = await api.app.inject({ method: 'POST', url: '/v1/datasets', ...form });
  assert.equal(asIdx.statusCode, 200, asIdx.body);
  assert.equal(asIdx.json().id, first.json().id);
  assert.deepEqual(await stored(), before);
});

test('an upload whose PNGs declare more pixels than UPLOAD_MAX_PIXELS is 413 naming the figure; nothing is decoded or stored', async () => {
  const before = await stored();
  // 4000×4000 by their headers, with image data that is not deflate: decoding any would be a 400.
  const lying = buildPng({ width: 4000, height: 4000, deflated: Buffer.from('not deflate') });
  const res = await postZip(makeZip(Array.from({ length: 9 }, (_, i) => ({ name: `${i}/big.png`, data: lying }))));
  assert.equal(res.statusCode, 413, res.body);
  assert.equal(res.json().message, 'the PNGs of this upload decode to 144,000,000 pixels; at most 134,217,728 (UPLOAD_MAX_PIXELS)');
  assert.deepEqual(await stored(), before);
});

test('multipart uploads refuse any part but one ZIP file or images + labels, and a name, naming the part', async () => {
  const before = await stored();
  const file = (name: string, data: Buffer = zip) => ({ name, filename: `${name}.bin`, data });
  const idx = encodeIdx([1, 28, 28], new Uint8Array(784));
  const cases: [Part[], RegExp][] = [
    [[file('file'), { name: 'note', data: 'hello' }], /unexpected field 'note'/],
    [[{ name: 'name', data: 'a' }, { name: 'name', data: 'b' }, file('file')], /unexpected field 'name'/],
    [[file('images', idx), file('extra')], /unexpected file part 'extra'/],
    [[file('labels', idx)], /'labels' comes without its pair/],
    [[{ name: 'name', data: 'nothing else' }], /holds no file/],
  ];
  for (const [parts, message] of cases) {
    const res = await api.app.inject({ method: 'POST', url: '/v1/datasets', ...multipart(parts) });
    assert.equal(res.statusCode, 400, `${parts.map((p) => p.name)}: ${res.body}`);
    assert.match(res.json().message, message);
  }
  assert.deepEqual(await stored(), before);
});

test('bad uploads are 4xx and store nothing', async () => {
  const before = await stored();
  const [d] = await mnistTestPngs(1);
  const cases: [Buffer, number][] = [
    [Buffer.from('not a zip'), 400],
    [makeZip([{ name: '../0/a.png', data: d.png }]), 400],
    [makeZip([{ name: '0/a.png', data: d.png }, { name: '0/b.jpg', data: Buffer.from('jpeg') }]), 400],
    [makeZip([{ name: '0/a.png', data: d.png }, { name: '5/' }]), 400],
    [makeZip([{ name: '0/bomb.png', data: Buffer.alloc(32 * 1024 * 1024) }]), 413],
    [Buffer.alloc(3 * 1024 * 1024, 1), 413],
  ];
  for (const [body, status] of cases) {
    const res = await postZip(body);
    assert.equal(res.statusCode, status, res.body);
    assert.ok(res.json().message.length > 10);
  }
  const text = await api.app.inject({ method: 'POST', url: '/v1/datasets', headers: { 'content-type': 'text/plain' }, payload: 'digits' });
  assert.equal(text.statusCode, 415);
  assert.deepEqual(await stored(), before);
});

test('a dataset is deleted, then gone', async () => {
  const { id } = (await postZip(zip)).json();
  assert.equal((await api.app.inject({ method: 'DELETE', url: `/v1/datasets/${id}` })).statusCode, 204);
  assert.equal((await api.app.inject({ url: `/v1/datasets/${id}` })).statusCode, 404);
  assert.equal((await api.app.inject({ method: 'DELETE', url: `/v1/datasets/${id}` })).statusCode, 404);
});

test('fine-tune jobs check their base model and dataset when queued', async () => {
  const post = (body: object) => api.app.inject({ method: 'POST', url: '/v1/jobs', payload: body });
  const noModel = await post({ type: 'finetune', baseModel: 'latest', dataset: 'mnist' });
  assert.equal(noModel.statusCode, 400);
  assert.match(noModel.json().message, /train one first/);

  await writeFixtureVersion(api.app.services.modelStore);
  const { id: datasetId } = (await postZip(zip)).json();
  assert.match((await post({ type: 'finetune', baseModel: 7, dataset: datasetId })).json().message, /version 7 does not exist/);
  assert.match((await post({ type: 'finetune', baseModel: 'latest', dataset: 'ds_000000000000' })).json().message, /dataset: ds_000000000000 does not exist/);
  assert.match((await post({ type: 'finetune', baseModel: 1, dataset: datasetId, freeze: 'everything' })).json().message, /freeze/);
  assert.match((await post({ type: 'finetune', baseModel: 1, dataset: datasetId, rehearsal: 1 })).json().message, /rehearsal/);
  assert.match((await post({ type: 'finetune', dataset: datasetId })).json().message, /baseModel/);

  const ok = await post({ type: 'finetune', baseModel: 'latest', dataset: datasetId, augment: { rotation: 10 } });
  assert.equal(ok.statusCode, 202, ok.body);
  const { params } = ok.json();
  assert.equal(params.baseModel, 1, '"latest" is pinned when queued');
  assert.deepEqual(
    { freeze: params.freeze, epochs: params.epochs, validationSplit: params.validationSplit, rehearsal: params.rehearsal, augment: params.augment },
    { freeze: 'features', epochs: 5, validationSplit: 0.2, rehearsal: 0.5, augment: { rotation: 10, shift: 0, scale: [1, 1] } },
  );
});

// Last: it fills the quota and empties the store.
test('an upload that would pass DATASETS_MAX_BYTES is refused saying what is used and free; deleting datasets makes room', async () => {
  const digits = await mnistTestPngs(200, 100);
  const zipOf = (n: number) => makeZip(digits.slice(0, n).map((d, i) => ({ name: `${d.label}/${i}.png`, data: d.png })));
  const tooLarge = await postZip(zipOf(200));
  assert.equal(tooLarge.statusCode, 413, tooLarge.body);
  assert.match(tooLarge.json().message, /^this dataset would take 157,\d{3} bytes stored; all datasets and corrections together may take at most 100,000 \(DATASETS_MAX_BYTES\)/);

  const before = await stored();
  const full = await postZip(zipOf(100));
  assert.equal(full.statusCode, 507, full.body);
  assert.match(full.json().message, /^this dataset would take 78,\d{3} bytes stored, but the datasets and corrections already use [\d,]+ of 100,000 bytes \(DATASETS_MAX_BYTES\), [\d,]+ free: delete datasets \(DELETE \/v1\/datasets\/\{id\}\)/);
  assert.deepEqual(await stored(), before);

  for (const { id } of (await api.app.inject({ url: '/v1/datasets' })).json().items) await api.app.inject({ method: 'DELETE', url: `/v1/datasets/${id}` });
  assert.equal((await postZip(zipOf(100))).statusCode, 201);
});

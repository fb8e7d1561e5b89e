import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { writeFixtureVersion } from '../helpers/fixture-model.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { multipart } from '../helpers/multipart.ts';
import { makeZip } from '../helpers/zip.ts';

let api: TestApi;
let zip: Buffer;
before(async () => {
  api = await startTestApi({ UPLOAD_MAX_BYTES: String(2 * 1024 * 1024) });
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

test('the same ZIP as a multipart file, with a name', async () => {
  const form = multipart([{ name: 'name', data: 'my handwriting' }, { name: 'file', filename: 'digits.zip', contentType: 'application/zip', data: zip }]);
  const res = await api.app.inject({ method: 'POST', url: '/v1/datasets', ...form });
  assert.equal(res.statusCode, 201, res.body);
  assert.equal(res.json().name, 'my handwriting');
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

test('a version evaluates on MNIST test (matching its metadata) and on a stored dataset', async () => {
  const meta = (await api.app.inject({ url: '/v1/models/1' })).json();
  const res = await api.app.inject({ method: 'POST', url: '/v1/models/1/evaluate', payload: { dataset: 'mnist' } });
  assert.equal(res.statusCode, 200, res.body);
  const ev = res.json();
  assert.equal(ev.count, 10000);
  assert.ok(Math.abs(ev.accuracy - meta.metrics.testAccuracy) < 1e-9);
  assert.deepEqual(ev.confusionMatrix, meta.metrics.confusionMatrix);
  assert.equal(ev.perClassAccuracy.length, 10);

  const { id } = (await postZip(zip)).json();
  const onDataset = (await api.app.inject({ method: 'POST', url: '/v1/models/1/evaluate', payload: { dataset: id } })).json();
  assert.equal(onDataset.count, 40);
  assert.equal((await api.app.inject({ method: 'POST', url: '/v1/models/9/evaluate', payload: { dataset: 'mnist' } })).statusCode, 404);
  assert.equal((await api.app.inject({ method: 'POST', url: '/v1/models/1/evaluate', payload: { dataset: 'ds_ffffffffffff' } })).statusCode, 404);
});

import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';
import { DatasetError, DEFAULT_DATASET_LIMITS } from '../../src/data/dataset-error.ts';
import { readIdxUpload } from '../../src/data/idx-upload.ts';
import { readImageFolderZip } from '../../src/data/image-folder.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { buildPng } from '../helpers/png.ts';
import { makeZip } from '../helpers/zip.ts';
import { loadMnist } from '../../src/data/mnist.ts';
import { encodeIdx } from '../../src/data/idx.ts';
import { zipStream } from '../../src/data/zip-stream.ts';
import yauzl from 'yauzl';

const rejects = async (zip: Buffer, pattern: RegExp, kind = 'invalid', limits = DEFAULT_DATASET_LIMITS) =>
  assert.rejects(readImageFolderZip(zip, limits), (err: Error) => err instanceof DatasetError && err.kind === kind && pattern.test(err.message));

test('an ImageFolder ZIP gives each PNG its folder digit, preprocessed as predict does', async () => {
  const digits = await mnistTestPngs(12);
  const entries = digits.map((d, i) => ({ name: `${d.label}/img${i}.PNG`, data: d.png }));
  const data = await readImageFolderZip(makeZip([{ name: '__MACOSX/._junk', data: Buffer.from('x') }, { name: '.DS_Store', data: Buffer.from('x') }, ...entries]));
  assert.equal(data.count, 12);
  const test = await loadMnist('test');
  for (let i = 0; i < 12; i++) {
    assert.equal(data.labels[i], digits[i].label);
    assert.deepEqual([...data.images.subarray(i * 784, (i + 1) * 784)], [...test.images.subarray(i * 784, (i + 1) * 784)]);
  }
});

test('the digit folders may sit inside one top-level folder', async () => {
  const [a, b] = await mnistTestPngs(2);
  const data = await readImageFolderZip(makeZip([{ name: 'my-digits/' }, { name: `my-digits/${a.label}/a.png`, data: a.png }, { name: `my-digits/${b.label}/b.png`, data: b.png }]));
  assert.deepEqual([...data.labels], [a.label, b.label]);
});

test('bad archives are refused with a message naming the problem', async () => {
  const [d] = await mnistTestPngs(1);
  await rejects(Buffer.from('PK not really a zip'), /not a readable ZIP/);
  await rejects(makeZip([]), /no images/);
  await rejects(makeZip([{ name: 'loose.png', data: d.png }, { name: '3/a.png', data: d.png }]), /'loose.png' is not inside a digit folder/);
  await rejects(makeZip([{ name: 'seven/a.png', data: d.png }, { name: '7/b.png', data: d.png }]), /folder 'seven', which is not a digit/);
  await rejects(makeZip([{ name: '7/notes.txt', data: Buffer.from('hello') }]), /'7\/notes.txt' is not a PNG/);
  await rejects(makeZip([{ name: '7/bad.png', data: Buffer.from('\x89PNG\r\n\x1a\nbroken') }]), /'7\/bad.png'/);
  await rejects(makeZip([{ name: '7/a.png', data: d.png }, { name: '3/' }]), /class folder '3' holds no images/);
});

test('names that climb out of the archive are refused', async () => {
  const [d] = await mnistTestPngs(1);
  await rejects(makeZip([{ name: '../7/a.png', data: d.png }]), /invalid/i);
  await rejects(makeZip([{ name: '/etc/7/a.png', data: d.png }]), /invalid/i);
  await rejects(makeZip([{ name: '7/..\\..\\a.png', data: d.png }]), /invalid/i);
});

test('a zip bomb is refused from its declared sizes, without inflating it', async () => {
  const bomb = makeZip([{ name: '7/bomb.png', data: Buffer.alloc(64 * 1024 * 1024) }]);
  assert.ok(bomb.length < 200 * 1024);
  const started = performance.now();
  await rejects(bomb, /bytes uncompressed/, 'too-large');
  assert.ok(performance.now() - started < 500);
  const many = makeZip(Array.from({ length: 5 }, (_, i) => ({ name: `1/${i}.png`, data: Buffer.alloc(10) })));
  await assert.rejects(readImageFolderZip(many, { ...DEFAULT_DATASET_LIMITS, maxImages: 3 }), /more than 3 images/);
});

test('an archive whose PNGs declare more pixels in all than maxPixels is refused from their headers, before any is decoded', async () => {
  // Each header declares 4000×4000, and its image data is not deflate: decoding would fail with a 400 instead.
  const lying = buildPng({ width: 4000, height: 4000, deflated: Buffer.from('not deflate') });
  const zip = makeZip(Array.from({ length: 9 }, (_, i) => ({ name: `${i}/big.png`, data: lying })));
  await rejects(zip, /^the PNGs of this upload decode to 144,000,000 pixels; at most 134,217,728 \(UPLOAD_MAX_PIXELS\)$/, 'too-large');
  await rejects(zip, /decode to 144,000,000 pixels; at most 100,000,000/, 'too-large', { ...DEFAULT_DATASET_LIMITS, maxPixels: 100_000_000 });
  await rejects(makeZip([{ name: '1/a.png', data: lying }]), /^'1\/a.png': the PNG image data is corrupt/, 'invalid');
});

test('an IDX pair is read gzipped or not', async () => {
  const test = await loadMnist('test');
  const images = encodeIdx([3, 28, 28], test.images.subarray(0, 3 * 784));
  const labels = encodeIdx([3], test.labels.subarray(0, 3));
  for (const [i, l] of [[images, labels], [gzipSync(images), gzipSync(labels)]]) {
    const data = readIdxUpload(i, l);
    assert.equal(data.count, 3);
    assert.deepEqual([...data.labels], [...test.labels.subarray(0, 3)]);
    assert.deepEqual([...data.images], [...test.images.subarray(0, 3 * 784)]);
  }
  assert.throws(() => readIdxUpload(images, encodeIdx([2], test.labels.subarray(0, 2))), /3 images but 2 labels/);
  assert.throws(() => readIdxUpload(labels, images), DatasetError);
  assert.throws(() => readIdxUpload(Buffer.from([0x1f, 0x8b, 1, 2]), labels), /gzip/);
});

test('the streamed ZIP writer (GET /v1/feedback.zip) is read back whole by yauzl, past 65,535 files too (ZIP64 end records)', async () => {
  const count = 70_000;
  async function* files() {
    for (let i = 0; i < count; i++) yield { name: `f/${i % 10}/${i}.png`, data: Buffer.from([i & 255]) };
  }
  const chunks: Buffer[] = [];
  for await (const chunk of zipStream(files())) chunks.push(chunk);
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) => yauzl.fromBuffer(Buffer.concat(chunks), { lazyEntries: true }, (err, z) => (err ? reject(err) : resolve(z!))));
  assert.equal(zip.entryCount, count);
  let seen = 0;
  let last = '';
  await new Promise<void>((resolve, reject) => {
    zip.on('entry', (e: yauzl.Entry) => {
      seen++;
      last = e.fileName;
      zip.readEntry();
    });
    zip.on('end', resolve);
    zip.on('error', reject);
    zip.readEntry();
  });
  assert.deepEqual([seen, last], [count, `f/9/${count - 1}.png`]);
});

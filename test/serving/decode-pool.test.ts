import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_DATASET_LIMITS } from '../../src/data/dataset-error.ts';
import { readIdxUpload } from '../../src/data/idx-upload.ts';
import { encodeIdx } from '../../src/data/idx.ts';
import { readImageFolderZip } from '../../src/data/image-folder.ts';
import type { LabelledImages } from '../../src/data/labelled-images.ts';
import { loadMnist } from '../../src/data/mnist.ts';
import type { NamedPng } from '../../src/image/png.ts';
import { pngsToMnistPixels } from '../../src/image/preprocess.ts';
import { DecodePool, INLINE_MAX_PIXELS } from '../../src/serving/decode-pool.ts';
import type { ServiceError } from '../../src/errors.ts';
import { siblingModule } from '../../src/ts-worker.ts';
import { encodeDataset } from '../../src/store/dataset-store.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { buildPng, encodeGrayPng } from '../helpers/png.ts';
import { makeZip } from '../helpers/zip.ts';

const log = pino({ level: 'silent' });
let pool: DecodePool;
before(async () => {
  pool = await DecodePool.start({ size: 1, log });
});
after(() => pool.close());

/** A dark digit-like blob on light paper, `side` pixels square: more pixels than are decoded inline. */
function paperDigit(side: number): Buffer {
  const pixels = new Uint8Array(side * side).fill(235);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const r = Math.hypot(x - side / 2, y - side / 2);
      if (r > side / 6 && r < side / 4) pixels[y * side + x] = 20;
    }
  }
  return encodeGrayPng(pixels, side, side);
}

test('PNGs decoded on a thread give exactly the pixels decoding them on the event loop gives', async () => {
  const digits = await mnistTestPngs(3);
  const pngs: NamedPng[] = [{ name: 'images[0]', png: paperDigit(300) }, ...digits.map((d, i) => ({ name: `images[${i + 1}]`, png: d.png }))];
  assert.ok(300 * 300 > INLINE_MAX_PIXELS, 'this request goes to the thread');
  const inline = pngsToMnistPixels(pngs);
  assert.deepEqual(await pool.preprocessPngs(pngs), inline);
  assert.equal(inline.length, 4 * 784);
});

test('a PNG that fails on a thread keeps its error kind and the message names it', async () => {
  const broken = buildPng({ width: 300, height: 300, deflated: Buffer.from('not deflate') });
  const [digit] = await mnistTestPngs(1);
  await assert.rejects(pool.preprocessPngs([{ name: 'images[0]', png: digit.png }, { name: 'images[1]', png: broken }]), (err: Error & { kind?: string }) => err.kind === 'invalid' && /^images\[1\]: the PNG image data is corrupt/.test(err.message));
});

/** The store's encoding with its files as plain Uint8Arrays (they are Buffers), as they come back from a thread. */
const encoded = (data: LabelledImages) => {
  const e = encodeDataset(data);
  return { ...e, images: new Uint8Array(e.images), labels: new Uint8Array(e.labels) };
};

test('an ImageFolder ZIP and an IDX pair read on a thread come back encoded and hashed as the store would', async () => {
  const digits = await mnistTestPngs(12);
  const zip = makeZip(digits.map((d, i) => ({ name: `${d.label}/${i}.png`, data: d.png })));
  assert.deepEqual(await pool.readDataset({ zip: Buffer.from(zip) }, DEFAULT_DATASET_LIMITS), encoded(await readImageFolderZip(zip)));

  const test = await loadMnist('test');
  const images = encodeIdx([5, 28, 28], test.images.subarray(0, 5 * 784));
  const labels = encodeIdx([5], test.labels.subarray(0, 5));
  assert.deepEqual(await pool.readDataset({ images: Buffer.from(images), labels: Buffer.from(labels) }, DEFAULT_DATASET_LIMITS), encoded(readIdxUpload(images, labels)));
});

test('an upload refused on a thread keeps its error kind and message', async () => {
  const lying = buildPng({ width: 4000, height: 4000, deflated: Buffer.from('not deflate') });
  const zip = makeZip([{ name: '1/a.png', data: lying }, { name: '2/b.png', data: lying }]);
  await assert.rejects(pool.readDataset({ zip }, { ...DEFAULT_DATASET_LIMITS, maxPixels: 20_000_000 }), (err: Error & { kind?: string }) => err.kind === 'too-large' && /decode to 32,000,000 pixels; at most 20,000,000/.test(err.message));
});

test('predictions waiting for the thread go before dataset uploads waiting longer', async () => {
  const digits = await mnistTestPngs(200);
  const zip = () => makeZip(digits.map((d, i) => ({ name: `${d.label}/${i}.png`, data: d.png })));
  const done: string[] = [];
  const first = pool.readDataset({ zip: zip() }, DEFAULT_DATASET_LIMITS).then(() => done.push('upload 1'));
  const second = pool.readDataset({ zip: zip() }, DEFAULT_DATASET_LIMITS).then(() => done.push('upload 2'));
  const prediction = pool.preprocessPngs([{ name: 'the image', png: paperDigit(300) }]).then(() => done.push('prediction'));
  await Promise.all([first, second, prediction]);
  assert.deepEqual(done, ['upload 1', 'prediction', 'upload 2']);
});

test('a thread that dies fails only the task it had, and a new thread takes the next one', async () => {
  const crashing = await DecodePool.start({ size: 1, log, entry: siblingModule('../helpers/decode-worker-that-crashes', import.meta.url) });
  try {
    const png = paperDigit(300);
    const doomed = crashing.preprocessPngs([{ name: 'crash', png }]);
    const next = crashing.preprocessPngs([{ name: 'the image', png }]);
    await assert.rejects(doomed, /the decode thread stopped: decode thread exited with code 70/);
    assert.deepEqual(await next, pngsToMnistPixels([{ name: 'the image', png }]));
  } finally {
    await crashing.close();
  }
});

test('a closed pool refuses work with a 503 kind', async () => {
  const closing = await DecodePool.start({ size: 1, log });
  await closing.close();
  await assert.rejects(closing.preprocessPngs([{ name: 'the image', png: paperDigit(300) }]), (err: Error & { kind?: string }) => err.kind === 'unavailable');
});

test('past PREDICT_MAX_QUEUED_PIXELS waiting for a thread, a prediction is refused at once (503 kind, Retry-After); the waiting ones are decoded', async () => {
  const bounded = await DecodePool.start({ size: 1, log, maxQueuedPixels: 2000 });
  try {
    const two = (await mnistTestPngs(2)).map((d, i) => ({ name: `images[${i}]`, png: d.png })); // 1,568 pixels, decoded on the thread
    const decoding = bounded.preprocessPngs(two); // taken by the idle thread: not waiting
    const waiting = bounded.preprocessPngs(two); // 1,568 waiting
    await assert.rejects(bounded.preprocessPngs(two), (err: ServiceError) => err.kind === 'unavailable' && err.retryAfterSeconds === 2 && /1,568 pixels are waiting to be decoded here \(PREDICT_MAX_QUEUED_PIXELS 2,000\)/.test(err.message));
    const expected = pngsToMnistPixels(two);
    assert.deepEqual([await decoding, await waiting], [expected, expected]);
    assert.deepEqual(await bounded.preprocessPngs(two), expected, 'the queue drained: taken again');
  } finally {
    await bounded.close();
  }
});

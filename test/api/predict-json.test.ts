import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadMnist } from '../../src/data/mnist.ts';
import { pngsToMnistPixels } from '../../src/image/preprocess.ts';
import { INLINE_MAX_PIXELS } from '../../src/serving/decode-pool.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { multipart } from '../helpers/multipart.ts';
import { encodeGrayPng } from '../helpers/png.ts';
import { writeUntrainedVersion } from '../helpers/serving.ts';

let api: TestApi;
let digits: Uint8Array[];
before(async () => {
  api = await startTestApi({ MAX_IMAGES_PER_REQUEST: '4' });
  await writeUntrainedVersion(api.app.services.modelStore, 1);
  await api.app.services.registry.refresh();
  const testSet = await loadMnist('test');
  digits = Array.from({ length: 4 }, (_, k) => Uint8Array.from(testSet.images.subarray(k * 784, (k + 1) * 784)));
});
after(() => api.close());

const post = (payload: unknown) => api.app.inject({ method: 'POST', url: '/v1/predict', payload: payload as object });
const probabilitiesOf = (res: { json: () => { predictions: { probabilities: number[] }[] } }) => res.json().predictions.map((p) => p.probabilities);

test('JSON {images: [base64 PNG…]}, JSON {pixels: [[784]…]}, multipart and raw PNG give the same answers', async () => {
  const pngs = digits.map((d) => encodeGrayPng(d));
  const byImages = await post({ images: pngs.map((p) => p.toString('base64')) });
  assert.equal(byImages.statusCode, 200);
  assert.equal(byImages.json().predictions.length, 4);
  const byPixels = await post({ pixels: digits.map((d) => Array.from(d)) });
  assert.equal(byPixels.statusCode, 200);
  const form = multipart(pngs.map((data, i) => ({ name: 'images', filename: `${i}.png`, contentType: 'image/png', data })));
  const byMultipart = await api.app.inject({ method: 'POST', url: '/v1/predict', ...form });
  const byRaw = await Promise.all(pngs.map((payload) => api.app.inject({ method: 'POST', url: '/v1/predict', headers: { 'content-type': 'image/png' }, payload })));
  const expected = probabilitiesOf(byImages);
  assert.deepEqual(probabilitiesOf(byPixels), expected);
  assert.deepEqual(probabilitiesOf(byMultipart), expected);
  assert.deepEqual(byRaw.map((r) => probabilitiesOf(r)[0]), expected);
});

test('pixels may be dark-on-light or fractional: they go through the same preprocessing', async () => {
  const inverted = Array.from(digits[0], (v) => 255 - v);
  const fractional = Array.from(digits[0], (v) => v / 1.0000001);
  const [a, b, c] = await Promise.all([post({ pixels: [Array.from(digits[0])] }), post({ pixels: [inverted] }), post({ pixels: [fractional] })]);
  assert.deepEqual(probabilitiesOf(b), probabilitiesOf(a));
  assert.deepEqual(probabilitiesOf(c), probabilitiesOf(a));
});

test('bad JSON bodies are 400s that say what is wrong', async () => {
  const cases: [unknown, RegExp][] = [
    [{}, /exactly one of `images`.*or `pixels`/],
    [{ images: [encodeGrayPng(digits[0]).toString('base64')], pixels: [Array.from(digits[0])] }, /exactly one/],
    [{ pixels: [[1, 2, 3]] }, /pixels\/0 .*784/],
    [{ pixels: [Array.from({ length: 784 }, () => 300)] }, /pixels\/0\/0 must be <= 255/],
    [{ pixels: [] }, /pixels must NOT have fewer than 1/],
    [{ images: ['!!! not base64 !!!'] }, /images\[0\] is not base64/],
    [{ images: [encodeGrayPng(digits[0]).toString('base64')], extra: 1 }, /unknown field 'extra'/],
  ];
  for (const [payload, message] of cases) {
    const res = await post(payload);
    assert.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 80));
    assert.match(res.json().message, message);
  }
});

test('an image that is not a PNG is a 415 naming it; a corrupt one a 400', async () => {
  const good = encodeGrayPng(digits[0]).toString('base64');
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46]).toString('base64');
  const notPng = await post({ images: [good, jpeg] });
  assert.equal(notPng.statusCode, 415);
  assert.match(notPng.json().message, /^images\[1\]: .*PNG/);
  const truncated = encodeGrayPng(digits[0]).subarray(0, 60).toString('base64');
  const corrupt = await post({ images: [truncated] });
  assert.equal(corrupt.statusCode, 400);
  assert.match(corrupt.json().message, /^images\[0\]: /);
});

test('more images than MAX_IMAGES_PER_REQUEST is 413, in JSON as in multipart', async () => {
  const five = Array.from({ length: 5 }, () => Array.from(digits[0]));
  const res = await post({ pixels: five });
  assert.equal(res.statusCode, 413);
  assert.match(res.json().message, /at most 4 images/);
});

test('a large PNG, decoded on a decode thread, gets exactly the probabilities of its pixels decoded on the event loop', async () => {
  const side = 320;
  assert.ok(side * side > INLINE_MAX_PIXELS);
  // The first digit 10× larger, dark on light paper, with a margin: as a canvas export sends it.
  const inside = (v: number) => v >= 20 && v < 300;
  const paper = new Uint8Array(side * side);
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) paper[y * side + x] = 255 - (inside(x) && inside(y) ? digits[0][Math.floor((y - 20) / 10) * 28 + Math.floor((x - 20) / 10)] : 0);
  const png = encodeGrayPng(paper, side, side);
  const onThread = await post({ images: [png.toString('base64')] });
  assert.equal(onThread.statusCode, 200, onThread.body);
  const inline = await post({ pixels: [Array.from(pngsToMnistPixels([{ name: 'the image', png }]))] });
  assert.deepEqual(probabilitiesOf(onThread), probabilitiesOf(inline));
});

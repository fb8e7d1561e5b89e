import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { writeFixtureVersion } from '../helpers/fixture-model.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { multipart } from '../helpers/multipart.ts';
import { buildPng, encodeGrayPng } from '../helpers/png.ts';

let api: TestApi;
before(async () => {
  api = await startTestApi({ BODY_LIMIT_BYTES: String(64 * 1024), MAX_IMAGES_PER_REQUEST: '8' });
});
after(() => api.close());

const predictPng = (png: Buffer, url = '/v1/predict') => api.app.inject({ method: 'POST', url, headers: { 'content-type': 'image/png' }, payload: png });

test('before any model exists predict answers 503 saying how to train one', async () => {
  const [digit] = await mnistTestPngs(1);
  const res = await predictPng(digit.png);
  assert.equal(res.statusCode, 503);
  assert.match(res.json().message, /POST \/v1\/jobs/);
});

test('a 28×28 MNIST digit as image/png is classified by the served version', async () => {
  const version = await writeFixtureVersion(api.app.services.modelStore);
  await api.app.services.registry.refresh();
  const digits = await mnistTestPngs(20);
  let correct = 0;
  for (const d of digits) {
    const res = await predictPng(d.png);
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.modelVersion, version);
    assert.equal(body.predictions.length, 1);
    const [p] = body.predictions;
    assert.equal(p.probabilities.length, 10);
    assert.ok(Math.abs(p.probabilities.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-3);
    assert.equal(p.confidence, Math.max(...p.probabilities));
    assert.equal(p.digit, p.probabilities.indexOf(p.confidence));
    if (p.digit === d.label) correct++;
  }
  assert.ok(correct >= 16, `${correct}/20 right`);
});

test('several images in one multipart request come back as one prediction each, in order', async () => {
  const digits = await mnistTestPngs(6, 100);
  const form = multipart(digits.map((d, i) => ({ name: 'images', filename: `d${i}.png`, contentType: 'image/png', data: d.png })));
  const res = await api.app.inject({ method: 'POST', url: '/v1/predict', ...form });
  assert.equal(res.statusCode, 200);
  const { predictions } = res.json();
  assert.equal(predictions.length, 6);
  // Same answers as one at a time: the order is kept.
  for (let i = 0; i < digits.length; i++) {
    const single = (await predictPng(digits[i].png)).json().predictions[0];
    assert.equal(predictions[i].digit, single.digit);
    assert.ok(Math.abs(predictions[i].confidence - single.confidence) < 1e-5);
  }
});

test('?version= pins a version; an unknown version is 404', async () => {
  const [d] = await mnistTestPngs(1);
  assert.equal((await predictPng(d.png, '/v1/predict?version=1')).json().modelVersion, 1);
  const missing = await predictPng(d.png, '/v1/predict?version=42');
  assert.equal(missing.statusCode, 404);
  assert.match(missing.json().message, /42/);
});

test('bytes that are not an image are 415, also under an image content type', async () => {
  const text = await api.app.inject({ method: 'POST', url: '/v1/predict', headers: { 'content-type': 'text/plain' }, payload: 'seven' });
  assert.equal(text.statusCode, 415);
  // JSON is a predict body now ({images} or {pixels}); anything else in it is named.
  const json = await api.app.inject({ method: 'POST', url: '/v1/predict', payload: { digit: 7 } });
  assert.equal(json.statusCode, 400);
  assert.match(json.json().message, /digit/);
  const fake = await predictPng(Buffer.from('definitely not a png'));
  assert.equal(fake.statusCode, 415);
  const jpeg = await api.app.inject({ method: 'POST', url: '/v1/predict', headers: { 'content-type': 'image/jpeg' }, payload: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]) });
  assert.equal(jpeg.statusCode, 415);
});

test('a corrupt or truncated PNG is 400', async () => {
  const png = encodeGrayPng(new Uint8Array(784).fill(0));
  const truncated = png.subarray(0, png.length - 20);
  assert.equal((await predictPng(truncated)).statusCode, 400);
  const corrupt = Buffer.from(png);
  corrupt[45] ^= 0xff; // inside the IDAT data: its CRC no longer matches
  assert.equal((await predictPng(corrupt)).statusCode, 400);
});

test('an empty body or an empty multipart is 400', async () => {
  assert.equal((await predictPng(Buffer.alloc(0))).statusCode, 400);
  const form = multipart([{ name: 'note', data: 'no files here' }]);
  assert.equal((await api.app.inject({ method: 'POST', url: '/v1/predict', ...form })).statusCode, 400);
});

test('a body over the configured limit is 413, as raw PNG and as a multipart file', async () => {
  const big = Buffer.alloc(65 * 1024, 1);
  assert.equal((await predictPng(big)).statusCode, 413);
  const form = multipart([{ name: 'images', filename: 'big.png', contentType: 'image/png', data: big }]);
  assert.equal((await api.app.inject({ method: 'POST', url: '/v1/predict', ...form })).statusCode, 413);
});

test('more images than allowed in one request is 413', async () => {
  const [d] = await mnistTestPngs(1);
  const form = multipart(Array.from({ length: 9 }, (_, i) => ({ name: 'images', filename: `${i}.png`, contentType: 'image/png', data: d.png })));
  const res = await api.app.inject({ method: 'POST', url: '/v1/predict', ...form });
  assert.equal(res.statusCode, 413);
});

test('PNGs declaring more pixels in all than PREDICT_MAX_PIXELS are 413 naming the figure, before any is decoded', async () => {
  // 4000×4000 each by their headers, and image data that is not deflate: decoding one would be a 400.
  const lying = buildPng({ width: 4000, height: 4000, deflated: Buffer.from('not deflate') });
  const message = /^the images of this request decode to 32,000,000 pixels; at most 16,777,216 \(PREDICT_MAX_PIXELS\)/;
  const form = multipart([0, 1].map((i) => ({ name: 'images', filename: `${i}.png`, contentType: 'image/png', data: lying })));
  const byMultipart = await api.app.inject({ method: 'POST', url: '/v1/predict', ...form });
  assert.equal(byMultipart.statusCode, 413, byMultipart.body);
  assert.match(byMultipart.json().message, message);
  const byJson = await api.app.inject({ method: 'POST', url: '/v1/predict', payload: { images: [lying.toString('base64'), lying.toString('base64')] } });
  assert.equal(byJson.statusCode, 413);
  assert.match(byJson.json().message, message);
  const one = await predictPng(lying);
  assert.equal(one.statusCode, 400, 'one of them alone is within the limit, so it is decoded, and fails');
  assert.match(one.json().message, /^the image: the PNG image data is corrupt/);
});

test('a multipart predict with a part that is not a file is 400 naming it', async () => {
  const [d] = await mnistTestPngs(1);
  const form = multipart([{ name: 'images', filename: 'd.png', contentType: 'image/png', data: d.png }, { name: 'version', data: '1' }]);
  const res = await api.app.inject({ method: 'POST', url: '/v1/predict', ...form });
  assert.equal(res.statusCode, 400);
  assert.match(res.json().message, /the multipart field 'version' is not a file/);
});

test('the service still answers after all of that', async () => {
  assert.equal((await api.app.inject({ url: '/healthz' })).statusCode, 200);
});

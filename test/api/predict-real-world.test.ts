import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadMnist } from '../../src/data/mnist.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { writeFixtureVersion } from '../helpers/fixture-model.ts';
import { encodeGrayPng } from '../helpers/png.ts';
import { renderDigits, type RenderedDigit } from '../helpers/real-world-digits.ts';

/*
 * What people send — canvas exports and photos of paper — must be classified as well as MNIST's
 * own digits. A default-trained model takes ~25 min here, so this trains a smaller one (~93% on
 * MNIST) and checks that re-rendering costs it at most 2 points; bench/real-world-accuracy.ts
 * checks the ≥ 97% of a fully trained model on the same kind of test set.
 */
const COUNT = 300;
let api: TestApi;
let digits: RenderedDigit[];
before(async () => {
  api = await startTestApi({ MAX_IMAGES_PER_REQUEST: '25', BODY_LIMIT_BYTES: String(20 * 1024 * 1024) });
  await writeFixtureVersion(api.app.services.modelStore);
  await api.app.services.registry.refresh();
  const testSet = await loadMnist('test');
  digits = renderDigits(testSet.images, testSet.labels, COUNT, 0, 11);
});
after(() => api.close());

/** Accuracy of /v1/predict on PNGs sent as JSON base64, 25 per request. */
async function accuracy(pngs: Buffer[]): Promise<number> {
  let correct = 0;
  for (let at = 0; at < pngs.length; at += 25) {
    const images = pngs.slice(at, at + 25).map((png) => png.toString('base64'));
    const res = await api.app.inject({ method: 'POST', url: '/v1/predict', payload: { images } });
    assert.equal(res.statusCode, 200, res.body);
    res.json().predictions.forEach((p: { digit: number }, i: number) => {
      if (p.digit === digits[at + i].label) correct++;
    });
  }
  return correct / pngs.length;
}

test('MNIST test digits re-rendered as canvas exports and paper photos are classified within 2 points of the originals', async (t) => {
  const original = await accuracy(digits.map((d) => encodeGrayPng(d.original)));
  const canvas = await accuracy(digits.map((d) => d.canvas));
  const photo = await accuracy(digits.map((d) => d.photo));
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const summary = `originals ${pct(original)}, canvas exports ${pct(canvas)}, paper photos ${pct(photo)} (${COUNT} digits)`;
  t.diagnostic(summary);
  assert.ok(original > 0.85, `the small model is a real one: ${summary}`);
  assert.ok(canvas >= original - 0.02, summary);
  assert.ok(photo >= original - 0.02, summary);
});

test('a digit drawn with a data: URL from canvas.toDataURL() is accepted as is', async () => {
  const d = digits[0];
  const res = await api.app.inject({ method: 'POST', url: '/v1/predict', payload: { images: [`data:image/png;base64,${d.canvas.toString('base64')}`] } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.json().predictions.length, 1);
});

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { augmentBatch, randomTransforms } from '../../src/ml/augment.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { mulberry32 } from '../../src/ml/random.ts';

before(() => initBackend('wasm'));

/** A "random" source that plays back fixed values, to ask for one exact transform. */
const fixed = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length];
};

function dot(x: number, y: number): tf.Tensor4D {
  const img = new Float32Array(28 * 28);
  img[y * 28 + x] = 1;
  return tf.tensor4d(img, [1, 28, 28, 1]);
}
const where = (t: tf.Tensor) => {
  const d = t.dataSync();
  const i = d.indexOf(Math.max(...d));
  return { x: i % 28, y: Math.floor(i / 28), v: d[i] };
};

test('a shift moves the ink by that many pixels', () => {
  // random() values: rotation 0 (0.5 → θ = 0), scale min, dx = +2 (1 → +shift), dy = −2 (0 → −shift)
  const out = augmentBatch(dot(10, 10), { rotation: 30, shift: 2, scale: [1, 1] }, fixed(0.5, 0, 1, 0));
  assert.deepEqual(where(out), { x: 12, y: 8, v: 1 });
});

test('a 90° rotation turns a point about the centre', () => {
  const out = augmentBatch(dot(20, 13.5 | 0), { rotation: 90, shift: 0, scale: [1, 1] }, fixed(1, 0, 0.5, 0.5));
  const p = where(out);
  assert.ok(Math.abs(p.x - 13.5) <= 1 && Math.abs(p.y - 20) <= 1.5, JSON.stringify(p));
});

test('zooming by 2 grows the ink about fourfold', () => {
  const square = tf.tidy(() => tf.pad(tf.ones([1, 4, 4, 1]), [[0, 0], [12, 12], [12, 12], [0, 0]]) as tf.Tensor4D);
  const out = augmentBatch(square, { rotation: 0, shift: 0, scale: [2, 2] }, fixed(0.5));
  const ratio = tf.sum(out).dataSync()[0] / tf.sum(square).dataSync()[0];
  assert.ok(ratio > 3 && ratio < 5, `ink ratio ${ratio}`);
});

test('the same seed gives the same transforms', () => {
  const opts = { rotation: 15, shift: 3, scale: [0.9, 1.1] };
  assert.deepEqual(randomTransforms(5, opts, mulberry32(1)), randomTransforms(5, opts, mulberry32(1)));
  assert.notDeepEqual(randomTransforms(5, opts, mulberry32(1)), randomTransforms(5, opts, mulberry32(2)));
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import pngjs from 'pngjs';
import { loadMnist } from '../../src/data/mnist.ts';
import { decodePng, type GrayImage } from '../../src/image/png.ts';
import { cropToInk, imageToMnistPixels, isMnistLike, MNIST_CENTRE, toMnistInput } from '../../src/image/preprocess.ts';
import { encodeGrayPng } from '../helpers/png.ts';
import { renderDigits } from '../helpers/real-world-digits.ts';

const mnist = await loadMnist('test');
const digitAt = (k: number) => mnist.images.subarray(k * 784, (k + 1) * 784);
const image = (data: Uint8Array, width = 28, height = 28): GrayImage => ({ width, height, data });

/** Ink box (pixels > 0) and centre of mass of a 28×28 result. */
function geometry(px: Uint8Array) {
  let x0 = 28, x1 = -1, y0 = 28, y1 = -1, m = 0, sx = 0, sy = 0;
  px.forEach((v, i) => {
    if (!v) return;
    const x = i % 28, y = Math.floor(i / 28);
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
    m += v;
    sx += v * x;
    sy += v * y;
  });
  return { w: x1 - x0 + 1, h: y1 - y0 + 1, cx: sx / m, cy: sy / m };
}

function correlation(a: Uint8Array, b: Uint8Array): number {
  const mean = (d: Uint8Array) => d.reduce((s, v) => s + v, 0) / d.length;
  const [ma, mb] = [mean(a), mean(b)];
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) ** 2;
    bb += (b[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

test('every one of the 10,000 MNIST test digits passes through unchanged', () => {
  let changed = 0;
  for (let k = 0; k < mnist.count; k++) {
    const d = digitAt(k);
    const out = toMnistInput(image(Uint8Array.from(d)));
    if (out.some((v, i) => v !== d[i])) changed++;
  }
  assert.equal(changed, 0);
  for (let k = 0; k < 50; k++) assert.deepEqual(imageToMnistPixels(encodeGrayPng(digitAt(k))), Uint8Array.from(digitAt(k)), 'as PNGs too');
});

test('a canvas export (280×280, transparent, off-centre) comes out as MNIST lays digits out: 20-pixel box, centred by mass', () => {
  for (const d of renderDigits(mnist.images, mnist.labels, 20, 100, 3)) {
    const out = imageToMnistPixels(d.canvas);
    const g = geometry(out);
    assert.ok(Math.max(g.w, g.h) <= 20 && Math.max(g.w, g.h) >= 19, `box ${g.w}×${g.h}`);
    assert.ok(Math.abs(g.cx - MNIST_CENTRE) <= 0.5 && Math.abs(g.cy - MNIST_CENTRE) <= 0.5, `centre of mass (${g.cx.toFixed(2)}, ${g.cy.toFixed(2)})`);
    assert.ok(correlation(out, d.original) > 0.7, `label ${d.label}: close to the original digit`);
    assert.ok(isMnistLike(image(out)), 'the result counts as MNIST-like');
    assert.deepEqual(toMnistInput(image(out)), out, 'so it is a fixed point of the pipeline');
  }
});

test('a paper photo (light, uneven, noisy background) comes out on clean black, close to the original digit', () => {
  const correlations: number[] = [];
  for (const d of renderDigits(mnist.images, mnist.labels, 20, 200, 4)) {
    const out = imageToMnistPixels(d.photo);
    const g = geometry(out);
    // The box counts every nonzero pixel: one grain of background noise left anywhere would widen it.
    assert.ok(Math.max(g.w, g.h) <= 20, `box ${g.w}×${g.h}: the background is clean black`);
    assert.ok(Math.max(...out) >= 200, 'faint photographed ink is stretched to strength');
    correlations.push(correlation(out, d.original));
  }
  const mean = correlations.reduce((a, b) => a + b) / correlations.length;
  assert.ok(mean > 0.9, `mean correlation with the originals ${mean.toFixed(3)}`);
});

test('the aspect ratio is kept: a 1:4 bar becomes 5×20, a 4:1 bar 20×5', () => {
  const bar = (w: number, h: number) => {
    const W = 100;
    const data = new Uint8Array(W * W);
    for (let y = 10; y < 10 + h; y++) for (let x = 30; x < 30 + w; x++) data[y * W + x] = 255;
    return geometry(toMnistInput(image(data, W, W)));
  };
  assert.deepEqual([bar(10, 40).w, bar(10, 40).h], [5, 20]);
  assert.deepEqual([bar(40, 10).w, bar(40, 10).h], [20, 5]);
});

test('a small digit is enlarged to the 20-pixel box, smoothly', () => {
  const data = new Uint8Array(28 * 28);
  for (let y = 10; y < 18; y++) for (let x = 12; x < 16; x++) data[y * 28 + x] = 255; // 4×8, off the MNIST box
  const out = toMnistInput(image(data));
  const g = geometry(out);
  assert.equal(g.h, 20);
  assert.ok(g.w >= 10 && g.w <= 11, `width ${g.w}`);
});

test('28×28 input that does not follow MNIST (fills the field, or sits 2+ pixels off-centre) is normalised', () => {
  const full = new Uint8Array(784);
  for (let y = 1; y < 27; y++) for (let x = 4; x < 24; x++) full[y * 28 + x] = 200;
  assert.equal(isMnistLike(image(full)), false);
  assert.equal(geometry(toMnistInput(image(full))).h, 20);

  // A digit whose centre of mass is at most 14.0 across, so one pixel right stays within tolerance.
  let k = 0;
  while (geometry(digitAt(k)).cx > MNIST_CENTRE) k++;
  const d = digitAt(k);
  const shift = (by: number) => {
    const out = new Uint8Array(784);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28 - by; x++) out[y * 28 + x + by] = d[y * 28 + x];
    return out;
  };
  const byOne = shift(1);
  assert.deepEqual(toMnistInput(image(byOne)), byOne, 'within the tolerance: used as sent');
  const byThree = shift(3);
  assert.equal(isMnistLike(image(byThree)), false);
  const moved = toMnistInput(image(byThree));
  assert.ok(Math.abs(geometry(moved).cx - MNIST_CENTRE) <= 0.5, 'moved back by its centre of mass');
  assert.ok(correlation(moved, d) > 0.95, 'and otherwise (nearly) the same digit');
});

test('a lone speck far from the digit does not widen the crop', () => {
  const W = 200;
  const data = new Uint8Array(W * W);
  for (let y = 50; y < 150; y++) for (let x = 90; x < 110; x++) data[y * W + x] = 255;
  data[5 * W + 5] = 255;
  const cropped = cropToInk(image(data, W, W));
  assert.deepEqual([cropped.width, cropped.height], [20, 100]);
});

test('a blank image (or one with no ink left) gives a blank 28×28 input', () => {
  assert.deepEqual(toMnistInput(image(new Uint8Array(50 * 40).fill(255), 50, 40)), new Uint8Array(784));
  assert.deepEqual(toMnistInput(image(new Uint8Array(784))), new Uint8Array(784));
});

test('the fast PNG decoder agrees with pngjs for every filter and 8-bit colour type', () => {
  const w = 37, h = 23;
  for (const colorType of [0, 2, 4, 6] as const) {
    for (const filterType of [0, 1, 2, 3, 4]) {
      const rgba = new Uint8Array(randomBytes(w * h * 4));
      if (colorType === 0 || colorType === 4) for (let i = 0; i < w * h; i++) rgba[4 * i + 1] = rgba[4 * i + 2] = rgba[4 * i];
      if (colorType === 0 || colorType === 2) for (let i = 0; i < w * h; i++) rgba[4 * i + 3] = 255;
      const png = new pngjs.PNG({ width: w, height: h });
      png.data = Buffer.from(rgba);
      const bytes = pngjs.PNG.sync.write(png, { colorType, filterType, inputHasAlpha: true });
      // pngjs's own decoding goes through the same luminance and alpha rules; compare with it.
      const reference = pngjs.PNG.sync.read(bytes).data;
      const expected = decodeReference(reference, w, h);
      assert.deepEqual(decodePng(bytes).data, expected, `colour type ${colorType}, filter ${filterType}`);
    }
  }
});

/** The documented decoding, from pngjs's RGBA: BT.601 luminance, transparent → background opposite the ink. */
function decodeReference(rgba: Uint8Array, w: number, h: number): Uint8Array {
  const n = w * h;
  // Math.fround: the decoder keeps luminance in a Float32Array; rounding must match to the last bit.
  const lum = Array.from({ length: n }, (_, i) => Math.fround(0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]));
  const alpha = Array.from({ length: n }, (_, i) => rgba[4 * i + 3]);
  if (alpha.every((a) => a === 255)) return Uint8Array.from(lum, (l) => Math.round(l));
  const opaque = lum.filter((_, i) => alpha[i] >= 128);
  const background = opaque.length > 0 && opaque.reduce((a, b) => a + b, 0) / opaque.length < 128 ? 255 : 0;
  return Uint8Array.from(lum, (l, i) => Math.round(l * (alpha[i] / 255) + background * (1 - alpha[i] / 255)));
}

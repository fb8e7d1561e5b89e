import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import pngjs from 'pngjs';
import { loadMnist } from '../../src/data/mnist.ts';
import { CorruptImageError, ImageTooLargeError, UnsupportedMediaError, type GrayImage } from '../../src/image/png.ts';
import { borderMean, darkBackground, imageToMnistPixels, MNIST_PIPELINE, pngsToMnistPixels, resizeArea, toMnistInput, type Step } from '../../src/image/preprocess.ts';
import { adam7Rows, buildPng, encodeGrayPng, encodeRgbaPng, pngChunk, unfilteredRows } from '../helpers/png.ts';

const firstTestDigit = async () => Uint8Array.from((await loadMnist('test')).images.subarray(0, 784));

/** Each pixel of a side×side image repeated k×k times. */
function upscale(pixels: Uint8Array, side: number, k: number): Uint8Array {
  const out = new Uint8Array(side * k * side * k);
  for (let y = 0; y < side * k; y++) for (let x = 0; x < side * k; x++) out[y * side * k + x] = pixels[Math.floor(y / k) * side + Math.floor(x / k)];
  return out;
}

function rgbPng(gray: Uint8Array, width: number, height: number): Buffer {
  const png = new pngjs.PNG({ width, height });
  png.data = Buffer.from(Uint8Array.from({ length: gray.length * 4 }, (_, i) => (i % 4 === 3 ? 255 : gray[i >> 2])));
  return pngjs.PNG.sync.write(png, { colorType: 2 });
}

const inverted = (d: Uint8Array) => d.map((v) => 255 - v);

test('an MNIST digit sent as a 28×28 grayscale PNG comes back bit for bit', async () => {
  const digit = await firstTestDigit();
  const out = imageToMnistPixels(encodeGrayPng(digit));
  assert.ok(out instanceof Uint8Array);
  assert.deepEqual(out, digit);
  assert.deepEqual(toMnistInput({ width: 28, height: 28, data: digit }), digit);
});

test('a transparent 280×280 canvas with opaque black strokes becomes a white digit on black, ink where the strokes were', () => {
  const w = 280;
  const rgba = new Uint8Array(w * w * 4); // transparent black: the same colour as the ink, only alpha tells them apart
  for (let y = 40; y < 240; y++) for (let x = 130; x < 150; x++) rgba.set([0, 0, 0, 255], (y * w + x) * 4);
  const out = imageToMnistPixels(encodeRgbaPng(rgba, w, w));
  // Cropped to the 20×200 bar, scaled to 2×20 (its 1:10 aspect, exactly 10:1 so fully inked) and
  // placed by centre of mass: (0.5, 9.5) → (14, 14) rounds to columns 14–15, rows 5–24.
  const expected = new Uint8Array(784);
  for (let y = 5; y < 25; y++) for (let x = 14; x < 16; x++) expected[y * 28 + x] = 255;
  assert.deepEqual(out, expected);
});

test('a dark digit on a white RGB image is inverted, at 28×28 and at other sizes', async () => {
  const digit = await firstTestDigit();
  const paper = rgbPng(inverted(digit), 28, 28);
  assert.equal(paper[25], 2, 'colour type RGB');
  assert.deepEqual(imageToMnistPixels(paper), digit);
  // 56×56: inverted, then averaged 2×2 back down to the very same digit.
  assert.deepEqual(imageToMnistPixels(rgbPng(inverted(upscale(digit, 28, 2)), 56, 56)), digit);
});

test('16-bit, palette and interlaced PNGs go through the whole pipeline', async () => {
  const digit = await firstTestDigit();
  const be = Buffer.alloc(784 * 2);
  digit.forEach((v, i) => be.writeUInt16BE(v * 257, i * 2));
  assert.deepEqual(imageToMnistPixels(buildPng({ width: 28, height: 28, bitDepth: 16, raw: unfilteredRows(be, 56) })), digit, '16-bit');
  assert.deepEqual(imageToMnistPixels(buildPng({ width: 28, height: 28, interlace: 1, raw: adam7Rows(digit, 28, 28) })), digit, 'Adam7');
  const grayPalette = pngChunk('PLTE', Buffer.from(Array.from({ length: 256 }, (_, v) => [v, v, v]).flat()));
  assert.deepEqual(imageToMnistPixels(buildPng({ width: 28, height: 28, colorType: 3, before: [grayPalette], raw: unfilteredRows(digit, 28) })), digit, 'palette');
});

test('broken uploads surface as typed errors: not a PNG is unsupported, a corrupt or oversized one invalid', () => {
  const png = encodeGrayPng(new Uint8Array(784));
  assert.throws(() => imageToMnistPixels(randomBytes(500)), (err: Error) => err instanceof UnsupportedMediaError && err.kind === 'unsupported');
  assert.throws(() => imageToMnistPixels(png.subarray(0, png.length - 20)), (err: Error) => err instanceof CorruptImageError && err.kind === 'invalid');
  const bad = Buffer.from(png);
  bad[png.indexOf('IDAT', 0, 'latin1') + 6] ^= 0xff;
  assert.throws(() => imageToMnistPixels(bad), CorruptImageError);
  assert.throws(() => imageToMnistPixels(buildPng({ width: 100_000, height: 100_000, raw: Buffer.alloc(10) })), (err: Error) => err instanceof ImageTooLargeError && err.kind === 'invalid');
  assert.throws(() => imageToMnistPixels(encodeGrayPng(new Uint8Array(40 * 40), 40, 40), { maxSide: 32 }), ImageTooLargeError, 'limits are passed on');
});

test('tiny, very wide and very tall images do not crash and give 784 pixels', () => {
  for (const [w, h] of [[1, 1], [2, 1], [1, 1000], [500, 20]]) {
    const out = imageToMnistPixels(encodeGrayPng(new Uint8Array(w * h).fill(9), w, h));
    assert.equal(out.length, 784, `${w}×${h}`);
  }
  const wide = new Uint8Array(500 * 20);
  for (let y = 5; y < 15; y++) for (let x = 100; x < 400; x++) wide[y * 500 + x] = 255;
  const out = imageToMnistPixels(encodeGrayPng(wide, 500, 20));
  // Cropped to the 300×10 bar, it scales to 20×1 (10·20/300 rounds to 1), centred by mass on row 14, columns 5–24.
  out.forEach((v, i) => { if (Math.floor(i / 28) !== 14) assert.equal(v, 0, `pixel ${i} is padding`); });
  assert.equal(out[14 * 28 + 14], 255, 'the bar lands in the middle');
  assert.equal(out[14 * 28 + 4], 0, 'the bar does not reach the left edge');
});

test('non-square images keep their aspect ratio and are placed by centre of mass on background', () => {
  const w = 56, h = 28;
  const data = new Uint8Array(w * h);
  for (let y = 4; y < 24; y++) for (let x = 10; x < 20; x++) data[y * w + x] = 255;
  // The 10×20 ink already fits the 20-pixel box; its centre of mass (4.5, 9.5) goes to (14, 14): columns 10–19, rows 5–24.
  const expected = new Uint8Array(784);
  for (let y = 5; y < 25; y++) for (let x = 10; x < 20; x++) expected[y * 28 + x] = 255;
  assert.deepEqual(toMnistInput({ width: w, height: h, data }), expected);
});

test('polarity follows the mean of the outermost ring of pixels', () => {
  assert.equal(borderMean({ width: 3, height: 3, data: Uint8Array.from([10, 10, 10, 10, 255, 10, 10, 10, 10]) }), 10);
  assert.equal(borderMean({ width: 3, height: 1, data: Uint8Array.from([0, 90, 30]) }), 40);
  assert.equal(borderMean({ width: 1, height: 3, data: Uint8Array.from([0, 90, 30]) }), 40);
  assert.equal(borderMean({ width: 1, height: 1, data: Uint8Array.from([7]) }), 7);
  const flat = (v: number): GrayImage => ({ width: 4, height: 4, data: new Uint8Array(16).fill(v) });
  assert.equal(darkBackground(flat(127)).data[0], 127, '127 is still dark');
  assert.equal(darkBackground(flat(128)).data[0], 127, '128 is light: inverted');
});

test('area resizing: exact for whole factors, mean-preserving otherwise, in both directions', () => {
  const data = new Uint8Array(90 * 60).map((_, i) => (i * 13) % 256);
  const img = { width: 90, height: 60, data };
  const mean = (d: Uint8Array) => d.reduce((a, b) => a + b, 0) / d.length;
  const small = resizeArea(img, 28, 19);
  assert.ok(Math.abs(mean(small.data) - mean(data)) < 1);
  const big = resizeArea({ width: 2, height: 2, data: Uint8Array.from([0, 255, 255, 0]) }, 4, 4);
  assert.deepEqual([...big.data], [0, 0, 255, 255, 0, 0, 255, 255, 255, 255, 0, 0, 255, 255, 0, 0]);
  const seven = Uint8Array.from({ length: 49 }, (_, i) => i * 5);
  assert.deepEqual(resizeArea({ width: 7, height: 7, data: seven }, 28, 28).data, upscale(seven, 7, 4));
  // 3 → 28 is not a whole factor: the boundary samples blend their two neighbours.
  const blended = resizeArea({ width: 3, height: 1, data: Uint8Array.from([0, 255, 0]) }, 28, 1).data;
  assert.deepEqual([blended[0], blended[14], blended[27]], [0, 255, 0]);
  assert.ok(blended[9] > 0 && blended[9] < 255, `a boundary sample blends (${blended[9]})`);
});

test('toMnistInput refuses an image whose data does not match its size', () => {
  assert.throws(() => toMnistInput({ width: 28, height: 28, data: new Uint8Array(10) }), RangeError);
  assert.throws(() => toMnistInput({ width: 0, height: 0, data: new Uint8Array(0) }), RangeError);
});

test('the pipeline is a list of pure steps, and a caller may run its own list', () => {
  assert.equal(MNIST_PIPELINE[0], darkBackground);
  assert.ok(MNIST_PIPELINE.every((step) => typeof step === 'function'));
  // A stand-in crop to the ink: a small square in a corner then fills the whole 28×28.
  const cropToInk: Step = (img) => {
    const xs: number[] = [], ys: number[] = [];
    img.data.forEach((v, i) => { if (v > 0) { xs.push(i % img.width); ys.push(Math.floor(i / img.width)); } });
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs) + 1, Math.min(...ys), Math.max(...ys) + 1];
    const data = new Uint8Array((x1 - x0) * (y1 - y0));
    for (let y = y0; y < y1; y++) data.set(img.data.subarray(y * img.width + x0, y * img.width + x1), (y - y0) * (x1 - x0));
    return { width: x1 - x0, height: y1 - y0, data };
  };
  const img: GrayImage = { width: 56, height: 56, data: new Uint8Array(56 * 56) };
  for (let y = 3; y < 7; y++) for (let x = 40; x < 44; x++) img.data[y * 56 + x] = 200;
  const input = Uint8Array.from(img.data);
  const stretchTo28: Step = (src) => {
    const data = new Uint8Array(28 * 28);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) data[y * 28 + x] = src.data[Math.floor((y * src.height) / 28) * src.width + Math.floor((x * src.width) / 28)];
    return { width: 28, height: 28, data };
  };
  assert.deepEqual(toMnistInput(img, [darkBackground, cropToInk, stretchTo28]), new Uint8Array(784).fill(200));
  assert.deepEqual(img.data, input, 'steps do not mutate their input');
});

test('several PNGs come out as their MNIST inputs one after another; an error names the image', async () => {
  const digit = await firstTestDigit();
  const paper = encodeGrayPng(inverted(upscale(digit, 28, 3)), 84, 84);
  const out = pngsToMnistPixels([{ name: 'images[0]', png: encodeGrayPng(digit) }, { name: 'images[1]', png: paper }]);
  assert.deepEqual(out, Uint8Array.from([...imageToMnistPixels(encodeGrayPng(digit)), ...imageToMnistPixels(paper)]));
  const truncated = paper.subarray(0, paper.length - 20);
  assert.throws(() => pngsToMnistPixels([{ name: 'images[0]', png: paper }, { name: 'images[1]', png: truncated }]), (err: Error & { kind?: string }) => err.kind === 'invalid' && /^images\[1\]: /.test(err.message));
});

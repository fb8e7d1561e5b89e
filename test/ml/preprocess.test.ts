import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { test } from 'node:test';
import { loadMnist } from '../../src/data/mnist.ts';
import { CorruptImageError, decodePng, ImageTooLargeError, readPngHeader, UnsupportedMediaError } from '../../src/ml/png.ts';
import { borderMean, imageToMnistPixels, resizeArea } from '../../src/ml/preprocess.ts';
import { encodeGrayPng, encodeRgbaPng } from '../helpers/png.ts';

const firstTestDigit = async () => Uint8Array.from((await loadMnist('test')).images.subarray(0, 784));

/** A PNG built chunk by chunk, to make what encoders will not: odd headers, bad data. */
function crc32(buf: Buffer): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
function handMadePng(width: number, height: number, idat: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // gray
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

test('an MNIST digit sent as a 28×28 grayscale PNG comes back bit for bit', async () => {
  const digit = await firstTestDigit();
  assert.deepEqual(imageToMnistPixels(encodeGrayPng(digit)), digit);
});

test('a transparent 280×280 canvas export with dark strokes becomes a white digit on black', () => {
  const w = 280;
  const rgba = new Uint8Array(w * w * 4); // fully transparent
  for (let y = 40; y < 240; y++) for (let x = 130; x < 150; x++) rgba.set([20, 20, 20, 255], (y * w + x) * 4); // a dark vertical bar: a "1"
  const out = imageToMnistPixels(encodeRgbaPng(rgba, w, w));
  assert.equal(out.length, 784);
  const at = (x: number, y: number) => out[y * 28 + x];
  assert.ok(at(14, 14) > 200, `ink at the centre (${at(14, 14)})`);
  assert.ok(at(2, 14) < 10 && at(25, 14) < 10, 'background is black');
  assert.equal(borderMean({ width: 28, height: 28, data: out }), 0);
});

test('dark ink on a white RGB photo is inverted to MNIST polarity', async () => {
  const digit = await firstTestDigit();
  const rgba = new Uint8Array(784 * 4);
  digit.forEach((v, i) => rgba.set([255 - v, 255 - v, 255 - v, 255], i * 4));
  const out = imageToMnistPixels(encodeRgbaPng(rgba, 28, 28));
  for (let i = 0; i < 784; i++) assert.ok(Math.abs(out[i] - digit[i]) <= 1, `pixel ${i}: ${out[i]} vs ${digit[i]}`);
});

test('colour is converted by luminance', () => {
  const rgba = new Uint8Array(784 * 4);
  for (let i = 0; i < 784; i++) rgba.set([0, 0, 0, 255], i * 4);
  rgba.set([255, 0, 0, 255], (14 * 28 + 14) * 4); // one red pixel
  const out = imageToMnistPixels(encodeRgbaPng(rgba, 28, 28));
  assert.equal(out[14 * 28 + 14], Math.round(0.299 * 255));
});

test('16-bit, palette and interlaced PNGs decode', async () => {
  const digit = await firstTestDigit();
  // 16-bit gray, each sample v·257 big-endian (so it scales back to exactly v).
  const raw16: number[] = [];
  for (let y = 0; y < 28; y++) {
    raw16.push(0);
    for (let x = 0; x < 28; x++) raw16.push(digit[y * 28 + x], digit[y * 28 + x]);
  }
  const ihdr16 = Buffer.from([0, 0, 0, 28, 0, 0, 0, 28, 16, 0, 0, 0, 0]);
  const sixteen = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr16), chunk('IDAT', deflateSync(Buffer.from(raw16))), chunk('IEND', Buffer.alloc(0))]);
  assert.equal(readPngHeader(sixteen).bitDepth, 16);
  assert.deepEqual(imageToMnistPixels(sixteen), digit);

  // An 8-bit gray image written Adam7-interlaced by hand: pngjs reads interlacing but does not write it.
  const ihdrAt = 16;
  const interlaced = Buffer.from(encodeGrayPng(digit));
  assert.equal(interlaced[ihdrAt + 12], 0);
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  const rows: number[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    for (let y = y0; y < 28; y += dy) {
      const line: number[] = [];
      for (let x = x0; x < 28; x += dx) line.push(digit[y * 28 + x]);
      if (line.length) rows.push(0, ...line);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(28, 0);
  ihdr.writeUInt32BE(28, 4);
  ihdr[8] = 8;
  ihdr[12] = 1;
  const adam7 = Buffer.concat([interlaced.subarray(0, 8), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0))]);
  assert.equal(readPngHeader(adam7).interlace, 1);
  assert.deepEqual(imageToMnistPixels(adam7), digit);

  const palette = Buffer.concat([
    interlaced.subarray(0, 8),
    chunk('IHDR', Buffer.from([0, 0, 0, 2, 0, 0, 0, 2, 8, 3, 0, 0, 0])),
    chunk('PLTE', Buffer.from([0, 0, 0, 255, 255, 255])),
    chunk('IDAT', deflateSync(Buffer.from([0, 0, 1, 0, 1, 0]))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  assert.deepEqual([...decodePng(palette).data], [0, 255, 255, 0]);
});

test('bytes that are not a PNG are an UnsupportedMediaError (415)', () => {
  for (const body of [Buffer.from('hello'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5]), Buffer.alloc(0)]) {
    assert.throws(() => imageToMnistPixels(body), (err: Error) => err instanceof UnsupportedMediaError && (err as UnsupportedMediaError).statusCode === 415);
  }
});

test('a truncated PNG, a corrupted IDAT and a bad header are CorruptImageErrors (400)', async () => {
  const png = encodeGrayPng(await firstTestDigit());
  assert.throws(() => imageToMnistPixels(png.subarray(0, 20)), CorruptImageError);
  assert.throws(() => imageToMnistPixels(png.subarray(0, png.length - 30)), CorruptImageError);
  const bad = Buffer.from(png);
  bad[45] ^= 0xff;
  assert.throws(() => imageToMnistPixels(bad), CorruptImageError);
  assert.throws(() => imageToMnistPixels(handMadePng(28, 28, Buffer.from('not deflate data'))), CorruptImageError);
  assert.throws(() => imageToMnistPixels(handMadePng(0, 28, Buffer.alloc(0))), CorruptImageError);
  assert.throws(() => imageToMnistPixels(handMadePng(28, 28, deflateSync(Buffer.alloc(28 * 10)))), /implies/);
});

test('a small PNG whose data inflates far beyond its header is refused without inflating it all', () => {
  const bomb = handMadePng(28, 28, deflateSync(Buffer.alloc(200 * 1024 * 1024)));
  assert.ok(bomb.length < 300 * 1024);
  assert.throws(() => imageToMnistPixels(bomb), CorruptImageError);
});

test('a PNG declaring 100000×100000 pixels is refused from its header, without decoding', () => {
  const bomb = handMadePng(100000, 100000, deflateSync(Buffer.alloc(10)));
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  assert.throws(() => imageToMnistPixels(bomb), (err: Error) => err instanceof ImageTooLargeError && /4096/.test(err.message));
  assert.ok(performance.now() - started < 50);
  assert.ok(process.memoryUsage().rss - rssBefore < 50 * 1024 * 1024);
});

test('tiny and very wide images do not crash and give 784 pixels', () => {
  assert.equal(imageToMnistPixels(encodeGrayPng([255], 1, 1)).length, 784);
  const wide = new Uint8Array(500 * 20);
  for (let y = 5; y < 15; y++) for (let x = 100; x < 400; x++) wide[y * 500 + x] = 255;
  const out = imageToMnistPixels(encodeGrayPng(wide, 500, 20));
  assert.equal(out.length, 784);
  assert.ok(Math.max(out[13 * 28 + 14], out[14 * 28 + 14]) > 0, 'the bar lands in the middle rows');
  assert.equal(out[0], 0);
});

test('area resizing keeps the mean brightness', () => {
  const data = new Uint8Array(90 * 60).map((_, i) => (i * 13) % 256);
  const img = { width: 90, height: 60, data };
  const mean = (d: Uint8Array) => d.reduce((a, b) => a + b, 0) / d.length;
  const small = resizeArea(img, 28, 19);
  assert.ok(Math.abs(mean(small.data) - mean(data)) < 1);
  const big = resizeArea({ width: 2, height: 2, data: Uint8Array.from([0, 255, 255, 0]) }, 4, 4);
  assert.deepEqual([...big.data], [0, 0, 255, 255, 0, 0, 255, 255, 255, 255, 0, 0, 255, 255, 0, 0]);
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import * as zlib from 'node:zlib';
import pngjs from 'pngjs';
import {
  CorruptImageError,
  declaredPixels,
  decodePng,
  DEFAULT_LIMITS,
  ImageTooLargeError,
  luminance,
  PNG_HEADER_BYTES,
  readPngHeader,
  UnsupportedMediaError,
} from '../../src/image/png.ts';
import { adam7Rows, buildPng, crc32, encodeGrayPng, encodeRgbaPng, PNG_SIGNATURE, pngChunk, unfilteredRows } from '../helpers/png.ts';
import type { ErrorKind } from '../../src/errors.ts';

/** A deterministic 28×28 "digit": a ring, so every row and column has ink and background. */
function ring(side = 28): Uint8Array {
  const img = new Uint8Array(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const r = Math.hypot(x - side / 2, y - side / 2);
      img[y * side + x] = r > side / 4 && r < side / 3 ? 255 : Math.round((x * 7 + y * 3) % 40);
    }
  }
  return img;
}

/** Writes with pngjs from RGBA input into another colour type / bit depth. */
function pngjsWrite(width: number, height: number, data: Uint8Array | Uint16Array, opts: { colorType: 0 | 2 | 4 | 6; bitDepth?: 8 | 16; inputColorType?: 0 | 2 | 4 | 6 }): Buffer {
  const inputColorType = opts.inputColorType ?? 6;
  const png = new pngjs.PNG({ width, height, inputColorType, inputHasAlpha: inputColorType === 6 || inputColorType === 4, bitDepth: opts.bitDepth ?? 8 });
  png.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return pngjs.PNG.sync.write(png, { ...opts, inputColorType, inputHasAlpha: inputColorType === 6 || inputColorType === 4 });
}

const isError = (cls: typeof UnsupportedMediaError | typeof CorruptImageError | typeof ImageTooLargeError, kind: ErrorKind) => (err: unknown) =>
  err instanceof cls && err.kind === kind && err.name === cls.name && err.message.length > 10;

test('the hand-made chunks carry correct CRCs', () => {
  const nodeCrc = (zlib as unknown as { crc32(b: Uint8Array): number }).crc32;
  for (const buf of [Buffer.alloc(0), Buffer.from('IEND'), randomBytes(1000)]) assert.equal(crc32(buf), nodeCrc(buf));
});

test('readPngHeader reads size, bit depth, colour type and interlacing', () => {
  assert.deepEqual(readPngHeader(encodeGrayPng(ring())), { width: 28, height: 28, bitDepth: 8, colorType: 0, interlace: 0 });
  assert.deepEqual(readPngHeader(encodeRgbaPng(new Uint8Array(3 * 2 * 4), 3, 2)), { width: 3, height: 2, bitDepth: 8, colorType: 6, interlace: 0 });
  assert.deepEqual(readPngHeader(buildPng({ width: 640, height: 480, bitDepth: 16, colorType: 2, interlace: 1 })), { width: 640, height: 480, bitDepth: 16, colorType: 2, interlace: 1 });
});

test('a header declaring 100000×100000 pixels is refused before any decoding or allocation', () => {
  // Signature and IHDR only: there is no pixel data at all, so nothing past the header can be read.
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(100_000, 0);
  ihdr.writeUInt32BE(100_000, 4);
  ihdr[8] = 8;
  ihdr[9] = 6;
  const headerOnly = Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr)]);
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  assert.throws(() => readPngHeader(headerOnly), isError(ImageTooLargeError, 'invalid'));
  assert.throws(() => decodePng(headerOnly), (err: Error) => err instanceof ImageTooLargeError && /4096/.test(err.message) && /16000000/.test(err.message));
  assert.ok(performance.now() - started < 50, 'refused at once');
  assert.ok(process.memoryUsage().rss - rssBefore < 20 * 1024 * 1024, 'nothing like 40 GB of RGBA was allocated');

  // One side within limits but too many pixels in all; one side over limits though few pixels.
  assert.throws(() => readPngHeader(buildPng({ width: 4096, height: 4000 })), ImageTooLargeError);
  assert.throws(() => readPngHeader(buildPng({ width: 4097, height: 1 })), ImageTooLargeError);
  assert.equal(readPngHeader(buildPng({ width: 4096, height: 3900 })).height, 3900);
});

test('the limits can be overridden, and the message names them', () => {
  const png = encodeGrayPng(new Uint8Array(40 * 40), 40, 40);
  assert.equal(readPngHeader(png).width, 40);
  assert.throws(() => readPngHeader(png, { maxSide: 32 }), (err: Error) => err instanceof ImageTooLargeError && /40×40/.test(err.message) && /32 pixels a side/.test(err.message));
  assert.throws(() => decodePng(png, { maxPixels: 1000 }), (err: Error) => err instanceof ImageTooLargeError && /1000 pixels in all/.test(err.message));
  const huge = buildPng({ width: 5000, height: 2 });
  assert.throws(() => readPngHeader(huge), ImageTooLargeError);
  assert.equal(readPngHeader(huge, { maxSide: 8192 }).width, 5000, 'an override of one limit keeps the default of the other');
  assert.deepEqual(DEFAULT_LIMITS, { maxSide: 4096, maxPixels: 16_000_000 });
});

test('anything without the PNG signature is an UnsupportedMediaError (415)', () => {
  const bodies = [
    Buffer.alloc(0),
    Buffer.from('hello'),
    Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1'),
    Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46]), // JPEG
    PNG_SIGNATURE.subarray(0, 7),
    ...Array.from({ length: 20 }, () => randomBytes(64 + Math.floor(Math.random() * 2000))),
  ];
  for (const body of bodies) {
    assert.throws(() => readPngHeader(body), isError(UnsupportedMediaError, 'unsupported'));
    assert.throws(() => decodePng(body), UnsupportedMediaError);
  }
});

test('a PNG cut short anywhere is a CorruptImageError (400), never a crash or a half image', () => {
  const png = encodeGrayPng(ring());
  for (let end = PNG_SIGNATURE.length; end < png.length; end++) {
    assert.throws(() => decodePng(png.subarray(0, end)), isError(CorruptImageError, 'invalid'), `cut at ${end} of ${png.length}`);
  }
});

test('a corrupted IDAT is a CorruptImageError, whether the CRC or only zlib notices', () => {
  const png = encodeGrayPng(ring());
  const idatAt = png.indexOf('IDAT', 0, 'latin1');
  const idatLength = png.readUInt32BE(idatAt - 4);
  for (const offset of [2, Math.floor(idatLength / 2), idatLength - 1]) {
    const bad = Buffer.from(png);
    bad[idatAt + 4 + offset] ^= 0x55;
    assert.throws(() => decodePng(bad), CorruptImageError, 'bad CRC');
  }
  // Same damage, but with a CRC recomputed so it is valid: now zlib's own checks must catch it.
  const payload = Buffer.from(png.subarray(idatAt + 4, idatAt + 4 + idatLength));
  payload[payload.length - 2] ^= 0x55; // inside the Adler-32 trailer
  assert.throws(() => decodePng(buildPng({ width: 28, height: 28, deflated: payload })), CorruptImageError);
  assert.throws(() => decodePng(buildPng({ width: 28, height: 28, deflated: Buffer.from('not deflate data') })), CorruptImageError);
  assert.throws(() => decodePng(buildPng({ width: 28, height: 28, raw: Buffer.alloc(29 * 10) })), (err: Error) => err instanceof CorruptImageError && /implies/.test(err.message), 'too few rows');
  assert.throws(() => decodePng(buildPng({ width: 3, height: 1, raw: Buffer.from([9, 0, 1, 2]) })), CorruptImageError, 'unknown filter type');
});

test('a small PNG that inflates far beyond its header is refused without inflating it all', () => {
  const bomb = buildPng({ width: 28, height: 28, raw: Buffer.alloc(200 * 1024 * 1024) });
  assert.ok(bomb.length < 300 * 1024);
  const rssBefore = process.memoryUsage().rss;
  assert.throws(() => decodePng(bomb), CorruptImageError);
  assert.ok(process.memoryUsage().rss - rssBefore < 100 * 1024 * 1024);
});

test('impossible headers are CorruptImageErrors, even when the data size would fit them', () => {
  // Each image holds exactly the bytes its header implies, so only the header checks can refuse it.
  const cases: Record<string, Buffer> = {
    'signature only': PNG_SIGNATURE,
    'first chunk is not IHDR': Buffer.concat([PNG_SIGNATURE, pngChunk('IDAT', Buffer.alloc(13))]),
    'zero width': buildPng({ width: 0, height: 1, raw: Buffer.from([0]) }),
    'RGB at 4 bits': buildPng({ width: 2, height: 1, bitDepth: 4, colorType: 2, raw: Buffer.from([0, 0x12, 0x34, 0x56]) }),
    'gray + alpha at 2 bits': buildPng({ width: 4, height: 1, bitDepth: 2, colorType: 4, raw: Buffer.from([0, 0x12, 0x34]) }),
    'palette at 16 bits': buildPng({ width: 1, height: 1, bitDepth: 16, colorType: 3, raw: Buffer.from([0, 0, 0]), before: [pngChunk('PLTE', Buffer.alloc(3))] }),
    'colour type 5': buildPng({ width: 1, height: 1, colorType: 5, raw: Buffer.from([0, 0]) }),
    'interlace method 2': buildPng({ width: 1, height: 1, interlace: 2, raw: Buffer.from([0, 0]) }),
    'palette without PLTE': buildPng({ width: 2, height: 1, colorType: 3, raw: Buffer.from([0, 0, 0]) }),
    'palette index past PLTE': buildPng({ width: 2, height: 1, colorType: 3, raw: Buffer.from([0, 0, 7]), before: [pngChunk('PLTE', Buffer.from([0, 0, 0]))] }),
  };
  const compression = buildPng({ width: 1, height: 1, raw: Buffer.from([0, 0]) });
  compression[8 + 8 + 10] = 1;
  compression.writeUInt32BE(crc32(compression.subarray(12, 29)), 29);
  cases['compression method 1'] = compression;
  for (const [name, png] of Object.entries(cases)) assert.throws(() => decodePng(png), isError(CorruptImageError, 'invalid'), name);
  // pngjs refuses these too, but as "unrecognised content at end of stream", which helps nobody.
  for (const name of ['interlace method 2', 'compression method 1']) assert.throws(() => decodePng(cases[name]), /unknown compression, filter or interlace method/, name);
});

test('8-bit gray decodes to its own values', () => {
  const digit = ring();
  const img = decodePng(encodeGrayPng(digit));
  assert.equal(img.width, 28);
  assert.equal(img.height, 28);
  assert.ok(img.data instanceof Uint8Array);
  assert.deepEqual(img.data, digit);
});

test('RGB and RGBA become BT.601 luminance', () => {
  const colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [12, 200, 99]];
  const rgba = new Uint8Array(colours.flatMap(([r, g, b]) => [r, g, b, 255]));
  const expected = colours.map(([r, g, b]) => Math.round(luminance(r, g, b)));
  assert.deepEqual(expected.slice(0, 3), [76, 150, 29]);
  const rgb = pngjsWrite(colours.length, 1, rgba, { colorType: 2 });
  assert.equal(readPngHeader(rgb).colorType, 2);
  assert.deepEqual([...decodePng(rgb).data], expected);
  assert.deepEqual([...decodePng(encodeRgbaPng(rgba, colours.length, 1)).data], expected, 'opaque alpha changes nothing');
});

test('16-bit gray and RGBA are scaled to 8 bits', () => {
  const digit = ring();
  const gray16 = pngjsWrite(28, 28, Uint16Array.from(digit, (v) => v * 257), { colorType: 0, inputColorType: 0, bitDepth: 16 });
  assert.deepEqual(readPngHeader(gray16), { width: 28, height: 28, bitDepth: 16, colorType: 0, interlace: 0 });
  assert.deepEqual(decodePng(gray16).data, digit);

  const rgba16 = pngjsWrite(2, 1, Uint16Array.from([65535, 0, 0, 65535, 257 * 10, 257 * 10, 257 * 10, 65535]), { colorType: 6, bitDepth: 16 });
  assert.equal(readPngHeader(rgba16).bitDepth, 16);
  assert.deepEqual([...decodePng(rgba16).data], [76, 10]);

  // Hand-made too, to not rely only on pngjs agreeing with itself: big-endian samples.
  const be = Buffer.alloc(28 * 28 * 2);
  digit.forEach((v, i) => be.writeUInt16BE(v * 257, i * 2));
  assert.deepEqual(decodePng(buildPng({ width: 28, height: 28, bitDepth: 16, raw: unfilteredRows(be, 56) })).data, digit);
});

test('palette images decode through their palette, with tRNS transparency', () => {
  const plte = pngChunk('PLTE', Buffer.from([0, 0, 0, 255, 255, 255, 255, 0, 0]));
  const eightBit = buildPng({ width: 3, height: 2, colorType: 3, before: [plte], raw: unfilteredRows([0, 1, 2, 2, 1, 0], 3) });
  assert.deepEqual([...decodePng(eightBit).data], [0, 255, 76, 76, 255, 0]);

  // 2 bits a pixel, 5 pixels: the row's last byte is padded.
  const packed = buildPng({ width: 5, height: 1, bitDepth: 2, colorType: 3, before: [plte], raw: Buffer.from([0, 0b00011001, 0b00000000]) });
  assert.deepEqual([...decodePng(packed).data], [0, 255, 76, 255, 0]);

  // Entry 1 (white) fully transparent over dark opaque ink: it becomes the light background.
  const trns = pngChunk('tRNS', Buffer.from([255, 0]));
  const transparent = buildPng({ width: 3, height: 1, colorType: 3, before: [plte, trns], raw: Buffer.from([0, 1, 0, 1]) });
  assert.deepEqual([...decodePng(transparent).data], [255, 0, 255]);
});

test('1-bit gray unpacks', () => {
  const png = buildPng({ width: 10, height: 1, bitDepth: 1, raw: Buffer.from([0, 0b10110000, 0b01000000]) });
  assert.deepEqual([...decodePng(png).data], [255, 0, 255, 255, 0, 0, 0, 0, 0, 255]);
});

test('Adam7-interlaced images decode, including sizes where some passes are empty', () => {
  for (const [w, h] of [[28, 28], [5, 3], [1, 1], [9, 2]]) {
    const pixels = Uint8Array.from({ length: w * h }, (_, i) => (i * 37 + 11) % 256);
    const png = buildPng({ width: w, height: h, interlace: 1, raw: adam7Rows(pixels, w, h) });
    assert.equal(readPngHeader(png).interlace, 1);
    assert.deepEqual(decodePng(png).data, pixels, `${w}×${h}`);
  }
});

test('transparency: transparent pixels become background, the opposite of the opaque ink', () => {
  // A canvas export: transparent black page, opaque dark ink, one anti-aliased half-transparent edge.
  const canvas = new Uint8Array([0, 0, 0, 0, 20, 20, 20, 255, 20, 20, 20, 128, 0, 0, 0, 0]);
  const a = 128 / 255;
  assert.deepEqual([...decodePng(encodeRgbaPng(canvas, 4, 1)).data], [255, 20, Math.round(20 * a + 255 * (1 - a)), 255]);

  // Light ink on a transparent page: the page goes dark, as MNIST's.
  const lightInk = new Uint8Array([255, 255, 255, 0, 250, 250, 250, 255]);
  assert.deepEqual([...decodePng(encodeRgbaPng(lightInk, 2, 1)).data], [0, 250]);

  // Nothing opaque at all: all background.
  assert.deepEqual([...decodePng(encodeRgbaPng(new Uint8Array(16).fill(200).map((v, i) => (i % 4 === 3 ? 0 : v)), 4, 1)).data], [0, 0, 0, 0]);

  // Gray + alpha works the same way.
  const grayAlpha = pngjsWrite(2, 1, new Uint8Array([255, 255, 255, 0, 30, 30, 30, 255]), { colorType: 4 });
  assert.equal(readPngHeader(grayAlpha).colorType, 4);
  assert.deepEqual([...decodePng(grayAlpha).data], [255, 30]);
});

test('declaredPixels sums what the headers declare without decoding, and names the image whose header is refused', () => {
  // Header and an IDAT that is not deflate: decoding either would fail, reading the headers does not.
  const lying = (width: number, height: number) => buildPng({ width, height, deflated: Buffer.from('not deflate') });
  assert.equal(declaredPixels([{ name: 'a', png: lying(4000, 4000) }, { name: 'b', png: lying(3000, 2000) }]), 22_000_000);
  assert.equal(declaredPixels([{ name: 'prefix', png: lying(640, 480).subarray(0, PNG_HEADER_BYTES) }]), 640 * 480, 'the first PNG_HEADER_BYTES are enough');
  assert.throws(() => declaredPixels([{ name: 'a', png: lying(28, 28) }, { name: 'images[1]', png: lying(5000, 10) }]), (err: Error & { kind?: string }) => err.kind === 'invalid' && /^images\[1\]: the PNG is 5000×10/.test(err.message));
  assert.throws(() => declaredPixels([{ name: 'file 2 (x.jpg)', png: Buffer.from('JFIF not a png at all') }]), (err: Error & { kind?: string }) => err.kind === 'unsupported' && /^file 2 \(x\.jpg\): /.test(err.message));
});

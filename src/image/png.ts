import { inflateSync } from 'node:zlib';
import pngjs from 'pngjs';
import { ServiceError } from '../errors.ts';

/** An image as one luminance byte per pixel, row-major. */
export interface GrayImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface ImageLimits {
  maxSide: number;
  maxPixels: number;
}

export const DEFAULT_LIMITS: ImageLimits = { maxSide: 4096, maxPixels: 16_000_000 };

/** Not a PNG at all. */
export class UnsupportedMediaError extends ServiceError {
  constructor(message: string) {
    super('unsupported', message);
  }
}

/** A PNG signature, but the rest cannot be decoded. */
export class CorruptImageError extends ServiceError {
  constructor(message: string) {
    super('invalid', message);
  }
}

/** A PNG that declares more pixels than we accept, refused before anything is allocated. */
export class ImageTooLargeError extends ServiceError {
  constructor(message: string) {
    super('invalid', message);
  }
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const IHDR_END = 8 + 4 + 4 + 13; // signature, length, type, IHDR data
/** The bytes readPngHeader needs: a prefix this long of a PNG is enough to know its size. */
export const PNG_HEADER_BYTES = IHDR_END;

/** Samples per pixel and the bit depths the PNG spec allows, by colour type. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const BIT_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
}

export function isPng(buf: Uint8Array): boolean {
  return buf.length >= SIGNATURE.length && Buffer.from(buf.buffer, buf.byteOffset, SIGNATURE.length).equals(SIGNATURE);
}

/** Reads the signature and IHDR only, so size limits apply before any pixel memory is allocated. */
export function readPngHeader(buf: Uint8Array, overrides: Partial<ImageLimits> = {}): PngHeader {
  const limits = { ...DEFAULT_LIMITS, ...overrides };
  if (!isPng(buf)) throw new UnsupportedMediaError('the body is not a PNG image (only PNG is supported)');
  if (buf.length < IHDR_END) throw new CorruptImageError('the PNG is truncated before its header ends');
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.readUInt32BE(8) !== 13 || view.toString('latin1', 12, 16) !== 'IHDR') throw new CorruptImageError('the PNG does not start with an IHDR header');
  const header: PngHeader = {
    width: view.readUInt32BE(16),
    height: view.readUInt32BE(20),
    bitDepth: view[24],
    colorType: view[25],
    interlace: view[28],
  };
  if (header.width === 0 || header.height === 0) throw new CorruptImageError('the PNG declares a zero width or height');
  // pngjs decodes impossible combinations (say RGB at 4 bits) into noise instead of failing.
  if (!BIT_DEPTHS[header.colorType]?.includes(header.bitDepth)) {
    throw new CorruptImageError(`the PNG declares colour type ${header.colorType} at ${header.bitDepth} bits, which PNG does not allow`);
  }
  if (view[26] !== 0 || view[27] !== 0 || header.interlace > 1) throw new CorruptImageError('the PNG declares an unknown compression, filter or interlace method');
  if (header.width > limits.maxSide || header.height > limits.maxSide || header.width * header.height > limits.maxPixels) {
    throw new ImageTooLargeError(
      `the PNG is ${header.width}×${header.height} pixels; at most ${limits.maxSide} pixels a side and ${limits.maxPixels} pixels in all are accepted`,
    );
  }
  return header;
}

/** A PNG with the name its errors are reported under (`images[2]`, `'7/a.png'`). */
export interface NamedPng {
  name: string;
  png: Uint8Array;
}

/** Runs `fn`; a ServiceError it throws comes out with `name: ` before its message, so a request of many images says which one failed. */
export function naming<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ServiceError) throw new ServiceError(err.kind, `${name}: ${err.message}`);
    throw err;
  }
}

/**
 * The pixels the PNGs decode to, together, read from their headers alone (a microsecond each),
 * so work can be bounded before any of it is done; each header is checked on the way (not a PNG,
 * over the per-image limits), the error naming the image.
 */
export function declaredPixels(pngs: NamedPng[]): number {
  let total = 0;
  for (const { name, png } of pngs) {
    const { width, height } = naming(name, () => readPngHeader(png));
    total += width * height;
  }
  return total;
}

/** ITU-R BT.601 luma, the weights MNIST-era grayscale conversions use. */
export function luminance(r: number, g: number, b: number): number {
  return 0.299 * r + 0.587 * g + 0.114 * b;
}

const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

/** Bytes the decompressed image data must hold: one filter byte plus the packed pixels per row. */
export function expectedDataBytes(h: PngHeader): number {
  const channels = CHANNELS[h.colorType];
  const rowBytes = (w: number) => 1 + Math.ceil((w * channels * h.bitDepth) / 8);
  if (h.interlace === 0) return h.height * rowBytes(h.width);
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) {
    const pw = h.width > x0 ? Math.ceil((h.width - x0) / dx) : 0;
    const ph = h.height > y0 ? Math.ceil((h.height - y0) / dy) : 0;
    if (pw > 0 && ph > 0) total += ph * rowBytes(pw);
  }
  return total;
}

const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

/** CRC-32 as PNG uses it (zlib.crc32 only arrived in Node 20.15). */
function crc32(buf: Uint8Array, from: number, to: number): number {
  let c = ~0;
  for (let i = from; i < to; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

interface ImageData {
  /** The inflated, still filtered scanlines. */
  inflated: Buffer;
  /** Every chunk's CRC matched and the stream ended with IEND. */
  intact: boolean;
  /** A tRNS chunk (colour-key or palette transparency) is present. */
  transparencyChunk: boolean;
  /** A critical chunk other than IHDR, PLTE, IDAT, IEND is present. */
  unknownCritical: boolean;
}

/**
 * pngjs fills in silently what a broken zlib stream leaves out, so the image data is inflated here
 * first — bounded by the size the header implies, which also defuses decompression bombs.
 */
function readImageData(buf: Buffer, header: PngHeader): ImageData {
  const idat: Buffer[] = [];
  let intact = false;
  let crcOk = true;
  let transparencyChunk = false;
  let unknownCritical = false;
  for (let at = 8; at + 8 <= buf.length; ) {
    const length = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    if (at + 12 + length > buf.length) throw new CorruptImageError(`the PNG is truncated inside its ${type} chunk`);
    if (crcOk && crc32(buf, at + 4, at + 8 + length) !== buf.readUInt32BE(at + 8 + length)) crcOk = false;
    if (type === 'IDAT') idat.push(buf.subarray(at + 8, at + 8 + length));
    else if (type === 'tRNS') transparencyChunk = true;
    else if (type.charCodeAt(0) < 0x61 && type !== 'IHDR' && type !== 'PLTE' && type !== 'IEND') unknownCritical = true;
    if (type === 'IEND') {
      intact = crcOk;
      break;
    }
    at += 12 + length;
  }
  if (idat.length === 0) throw new CorruptImageError('the PNG has no image data');
  const expected = expectedDataBytes(header);
  let inflated: Buffer;
  try {
    // Output chunks of the size expected (zlib's least is 64), not Node's 16 kB: a 28×28 digit is
    // ~800 bytes, and a 16 kB buffer a request cost ~3 µs of the event loop and more GC.
    inflated = inflateSync(idat.length === 1 ? idat[0] : Buffer.concat(idat), { maxOutputLength: expected + 1, chunkSize: Math.max(64, Math.min(expected + 1, 16 * 1024)) });
  } catch (err) {
    throw new CorruptImageError(`the PNG image data is corrupt: ${(err as Error).message}`);
  }
  if (inflated.length !== expected) throw new CorruptImageError(`the PNG image data holds ${inflated.length} bytes where its header implies ${expected}`);
  return { inflated, intact, transparencyChunk, unknownCritical };
}

/**
 * The common case — 8 bits a sample, not interlaced, no palette or colour-key transparency, every
 * CRC right — decoded straight from the scanlines already inflated above, as pngjs would decode it
 * but several times faster (it inflates again and goes through streams): a 28×28 gray digit in
 * ~20 µs instead of ~80 µs, which matters at thousands of predictions a second. Gray comes back as
 * is (its luminance), colour as RGBA; anything else is left to pngjs (undefined).
 */
function decodeSimple(header: PngHeader, data: ImageData): { gray: Uint8Array } | { rgba: Uint8Array } | undefined {
  const { width, height, bitDepth, colorType, interlace } = header;
  if (bitDepth !== 8 || interlace !== 0 || colorType === 3 || !data.intact || data.transparencyChunk || data.unknownCritical) return undefined;
  const channels = CHANNELS[colorType];
  const stride = width * channels;
  const raw = data.inflated;
  const rows = new Uint8Array(stride * height);
  const none = new Uint8Array(stride); // the row above the first
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = rows.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? rows.subarray((y - 1) * stride, y * stride) : none;
    // Uint8Array stores wrap modulo 256, as the filters' arithmetic is defined.
    switch (filter) {
      case 0:
        cur.set(line);
        break;
      case 1:
        for (let i = 0; i < channels; i++) cur[i] = line[i];
        for (let i = channels; i < stride; i++) cur[i] = line[i] + cur[i - channels];
        break;
      case 2:
        for (let i = 0; i < stride; i++) cur[i] = line[i] + prev[i];
        break;
      case 3:
        for (let i = 0; i < channels; i++) cur[i] = line[i] + (prev[i] >> 1);
        for (let i = channels; i < stride; i++) cur[i] = line[i] + ((cur[i - channels] + prev[i]) >> 1);
        break;
      case 4:
        for (let i = 0; i < channels; i++) cur[i] = line[i] + prev[i];
        for (let i = channels; i < stride; i++) {
          const a = cur[i - channels], b = prev[i], c = prev[i - channels];
          const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
          cur[i] = line[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
        }
        break;
      default:
        throw new CorruptImageError(`the PNG uses an unknown filter type ${filter} on row ${y}`);
    }
  }
  if (colorType === 0) return { gray: rows };
  if (colorType === 6) return { rgba: rows };
  const n = width * height;
  const rgba = new Uint8Array(n * 4);
  if (colorType === 4) {
    for (let i = 0; i < n; i++) {
      rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = rows[2 * i];
      rgba[4 * i + 3] = rows[2 * i + 1];
    }
  } else {
    for (let i = 0; i < n; i++) {
      rgba[4 * i] = rows[3 * i];
      rgba[4 * i + 1] = rows[3 * i + 1];
      rgba[4 * i + 2] = rows[3 * i + 2];
      rgba[4 * i + 3] = 255;
    }
  }
  return { rgba };
}

/**
 * Decodes any PNG (gray, gray+alpha, RGB, RGBA, palette, 1–16 bit, interlaced) to 8-bit luminance.
 *
 * Transparency: a transparent pixel is background. For a canvas export (opaque dark strokes on a
 * transparent page) the background must be the opposite of the ink, so transparent pixels are
 * composited onto white when the opaque pixels are mostly dark, and onto black otherwise; the
 * polarity step later turns "dark ink on light" into MNIST's "light ink on dark".
 */
export function decodePng(buf: Uint8Array, limits: Partial<ImageLimits> = {}): GrayImage {
  const header = readPngHeader(buf, limits);
  const bytes = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const simple = decodeSimple(header, readImageData(bytes, header));
  if (simple && 'gray' in simple) return { width: header.width, height: header.height, data: simple.gray };
  let rgba: Uint8Array;
  if (simple) rgba = simple.rgba;
  else {
    try {
      rgba = pngjs.PNG.sync.read(bytes).data;
    } catch (err) {
      throw new CorruptImageError(`the PNG could not be decoded: ${(err as Error).message}`);
    }
  }
  const { width, height } = header;
  const n = width * height;
  if (rgba.length < n * 4) throw new CorruptImageError('the PNG holds fewer pixels than its header declares');

  const lum = new Float32Array(n);
  let opaqueSum = 0;
  let opaqueCount = 0;
  let anyTransparent = false;
  for (let i = 0; i < n; i++) {
    const l = luminance(rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]);
    lum[i] = l;
    const a = rgba[4 * i + 3];
    if (a < 255) anyTransparent = true;
    if (a >= 128) {
      opaqueSum += l;
      opaqueCount++;
    }
  }
  const data = new Uint8Array(n);
  if (!anyTransparent) {
    for (let i = 0; i < n; i++) data[i] = Math.round(lum[i]);
    return { width, height, data };
  }
  const background = opaqueCount > 0 && opaqueSum / opaqueCount < 128 ? 255 : 0;
  for (let i = 0; i < n; i++) {
    const a = rgba[4 * i + 3] / 255;
    data[i] = Math.round(lum[i] * a + background * (1 - a));
  }
  return { width, height, data };
}

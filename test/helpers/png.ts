import { deflateSync } from 'node:zlib';
import pngjs from 'pngjs';

function checkLength(got: number, width: number, height: number, perPixel: number): void {
  // pngjs would write whatever the buffer holds, so a wrong-sized test image fails far from its cause.
  if (got !== width * height * perPixel) throw new RangeError(`a ${width}×${height} image needs ${width * height * perPixel} values, got ${got}`);
}

export { encodeGrayPng } from '../../src/image/png-encode.ts';

/** An RGBA 8-bit PNG (4 bytes a pixel). */
export function encodeRgbaPng(rgba: Uint8Array | number[], width: number, height: number): Buffer {
  checkLength(rgba.length, width, height, 4);
  const png = new pngjs.PNG({ width, height });
  png.data = Buffer.from(Uint8Array.from(rgba));
  return pngjs.PNG.sync.write(png);
}

/*
 * Hand-made PNGs, for what pngjs cannot write (palette, interlacing) and what no encoder writes on
 * purpose (lying headers, broken data). zlib.crc32 only arrived in Node 20.15, hence our own.
 */

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function crc32(buf: Uint8Array): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** length, type, data, CRC over type + data. */
export function pngChunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(body.length + 8);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 4 + body.length);
  return out;
}

export interface HandMadePng {
  width: number;
  height: number;
  bitDepth?: number;
  colorType?: number;
  interlace?: number;
  /** Filtered scanlines (each row led by its filter byte), deflated here unless `deflated` is given. */
  raw?: Uint8Array;
  /** IDAT payload as is, for broken streams. */
  deflated?: Uint8Array;
  /** Chunks between IHDR and IDAT (PLTE, tRNS). */
  before?: Buffer[];
}

export function buildPng({ width, height, bitDepth = 8, colorType = 0, interlace = 0, raw, deflated, before = [] }: HandMadePng): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  ihdr[12] = interlace;
  const idat = deflated ?? deflateSync(raw ?? new Uint8Array(0));
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), ...before, pngChunk('IDAT', idat), pngChunk('IEND', new Uint8Array(0))]);
}

/** Unfiltered scanlines (filter byte 0) of `bytesPerRow`-byte rows. */
export function unfilteredRows(bytes: Uint8Array | number[], bytesPerRow: number): Buffer {
  const src = Uint8Array.from(bytes);
  const rows = src.length / bytesPerRow;
  const out = Buffer.alloc(rows * (bytesPerRow + 1));
  for (let y = 0; y < rows; y++) out.set(src.subarray(y * bytesPerRow, (y + 1) * bytesPerRow), y * (bytesPerRow + 1) + 1);
  return out;
}

/** Adam7-interlaced, unfiltered scanlines of an 8-bit, one-sample-a-pixel image. */
export function adam7Rows(pixels: Uint8Array, width: number, height: number): Buffer {
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  const rows: number[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    if (x0 >= width) continue; // an empty pass has no rows at all, not empty rows
    for (let y = y0; y < height; y += dy) {
      rows.push(0);
      for (let x = x0; x < width; x += dx) rows.push(pixels[y * width + x]);
    }
  }
  return Buffer.from(rows);
}

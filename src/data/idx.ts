/**
 * Reader for the IDX format of the MNIST distribution (http://yann.lecun.com/exdb/mnist/):
 * a big-endian header `0x00 0x00 <type> <ndims>`, then one uint32 per dimension, then the data.
 * Only unsigned bytes (type 0x08) occur in MNIST, so only those are accepted.
 */
import type { LabelledImages } from './labelled-images.ts';

export const IDX_TYPE_UBYTE = 0x08;
export const IDX_IMAGES_DIMS = 3; // count × rows × cols
export const IDX_LABELS_DIMS = 1; // count

export class IdxFormatError extends Error {}

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

export function parseIdx(buf: Uint8Array, expectedDims: number): IdxArray {
  if (buf.length < 4) throw new IdxFormatError('IDX file shorter than its magic number');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint16(0) !== 0) throw new IdxFormatError('IDX magic number must start with two zero bytes');
  const type = buf[2];
  const dims = buf[3];
  if (type !== IDX_TYPE_UBYTE) throw new IdxFormatError(`IDX data type 0x${type.toString(16)} is not unsigned byte (0x08)`);
  if (dims !== expectedDims) throw new IdxFormatError(`IDX file has ${dims} dimensions, expected ${expectedDims}`);
  const headerBytes = 4 + 4 * dims;
  if (buf.length < headerBytes) throw new IdxFormatError('IDX header is truncated');
  const shape = Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i));
  const size = shape.reduce((a, b) => a * b, 1);
  if (buf.length !== headerBytes + size) {
    throw new IdxFormatError(`IDX data holds ${buf.length - headerBytes} bytes, header says ${size}`);
  }
  return { shape, data: buf.subarray(headerBytes) };
}

/** The inverse of parseIdx, for unsigned bytes: how uploaded datasets are stored. */
export function encodeIdx(shape: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header[2] = IDX_TYPE_UBYTE;
  header[3] = shape.length;
  shape.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}


export function parseIdxPair(imagesBuf: Uint8Array, labelsBuf: Uint8Array, side = 28): LabelledImages {
  const images = parseIdx(imagesBuf, IDX_IMAGES_DIMS);
  const labels = parseIdx(labelsBuf, IDX_LABELS_DIMS);
  const [count, rows, cols] = images.shape;
  if (rows !== side || cols !== side) throw new IdxFormatError(`images are ${rows}×${cols}, expected ${side}×${side}`);
  if (labels.shape[0] !== count) throw new IdxFormatError(`${count} images but ${labels.shape[0]} labels`);
  const bad = labels.data.findIndex((l) => l > 9);
  if (bad >= 0) throw new IdxFormatError(`label ${labels.data[bad]} at index ${bad} is not a digit 0-9`);
  return { images: images.data, labels: labels.data, count };
}

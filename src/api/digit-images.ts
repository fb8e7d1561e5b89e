import { declaredPixels, type NamedPng } from '../image/png.ts';
import { ServiceError } from '../errors.ts';
import type { DecodePool } from '../serving/decode-pool.ts';
import { formatCount } from '../format.ts';

const DATA_URL = /^data:[\w/+.-]*(;[\w=.-]+)*;base64,/;
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

/** A base64 PNG from a JSON body (a canvas's `toDataURL()` works as is). */
export function fromBase64(text: string, name: string): Buffer {
  const body = text.replace(DATA_URL, '');
  if (!BASE64.test(body)) throw new ServiceError('invalid', `${name} is not base64 (send the PNG's bytes base64-encoded, optionally as a data: URL)`);
  return Buffer.from(body, 'base64');
}

/**
 * Every PNG of a request checked from its header against PREDICT_MAX_PIXELS, then decoded and
 * preprocessed as MNIST was made (on a decode thread unless tiny): 784 bytes per image.
 */
export async function preprocessPngs(decodePool: DecodePool, pngs: NamedPng[], maxPixels: number): Promise<Uint8Array> {
  const pixels = declaredPixels(pngs);
  if (pixels > maxPixels) {
    throw new ServiceError('too-large', `the images of this request decode to ${formatCount(pixels)} pixels; at most ${formatCount(maxPixels)} (PREDICT_MAX_PIXELS): send smaller images, or fewer per request`);
  }
  return decodePool.preprocessPngs(pngs);
}

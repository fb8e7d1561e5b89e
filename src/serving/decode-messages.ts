import type { DatasetLimits } from '../data/dataset-error.ts';
import type { ErrorKind } from '../errors.ts';
import type { NamedPng } from '../image/png.ts';

/**
 * Messages between the decode pool (API thread) and its threads. A thread has one task at a time,
 * so a reply needs no id. Bytes travel as transferred ArrayBuffers: moved, not copied.
 */
export type DecodeTask =
  /** PNGs of one predict request, one after another in `bytes`; `ends[i]` is where the i-th ends. */
  | { type: 'pngs'; bytes: ArrayBuffer; ends: number[]; names: string[] }
  | { type: 'imagefolder'; zip: ArrayBuffer; limits: DatasetLimits }
  | { type: 'idx'; images: ArrayBuffer; labels: ArrayBuffer; limits: DatasetLimits };

export type DecodeReply =
  | { type: 'ready' }
  /** count × 784 MNIST inputs. */
  | { type: 'pixels'; pixels: ArrayBuffer }
  /** An EncodedDataset (store/dataset-store.ts) with its files as ArrayBuffers. */
  | { type: 'dataset'; images: ArrayBuffer; labels: ArrayBuffer; count: number; classCounts: number[]; sha256: string }
  /** `kind` when the input was at fault (a ServiceError), none for a bug. */
  | { type: 'failed'; kind?: ErrorKind; message: string };

/** A buffer that may be transferred: the bytes' own, or a copy when they are a view into a larger (or Node's pooled) one. */
export function transferable(bytes: Uint8Array): ArrayBuffer {
  const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  return own ? (bytes.buffer as ArrayBuffer) : (new Uint8Array(bytes).buffer as ArrayBuffer);
}

/** The PNGs of a request in one buffer: one transfer, whatever their number. */
export function packPngs(pngs: NamedPng[]): Extract<DecodeTask, { type: 'pngs' }> {
  const bytes = new Uint8Array(pngs.reduce((n, p) => n + p.png.byteLength, 0));
  const ends: number[] = [];
  let at = 0;
  for (const { png } of pngs) {
    bytes.set(png, at);
    at += png.byteLength;
    ends.push(at);
  }
  return { type: 'pngs', bytes: bytes.buffer, ends, names: pngs.map((p) => p.name) };
}

export function unpackPngs({ bytes, ends, names }: Extract<DecodeTask, { type: 'pngs' }>): NamedPng[] {
  return ends.map((end, i) => ({ name: names[i], png: new Uint8Array(bytes, i === 0 ? 0 : ends[i - 1], end - (i === 0 ? 0 : ends[i - 1])) }));
}

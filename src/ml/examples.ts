import type { LabelledImages } from '../data/labelled-images.ts';
import { mulberry32, range, shuffleInPlace } from './random.ts';
import { DIGIT_PIXELS } from '../schemas/digit.ts';

/** Copies the chosen examples of several sets into one. */
export function concatExamples(parts: { data: LabelledImages; indices: ArrayLike<number> }[]): LabelledImages {
  const count = parts.reduce((n, p) => n + p.indices.length, 0);
  const images = new Uint8Array(count * DIGIT_PIXELS);
  const labels = new Uint8Array(count);
  let k = 0;
  for (const { data, indices } of parts) {
    for (let i = 0; i < indices.length; i++, k++) {
      const src = indices[i];
      images.set(data.images.subarray(src * DIGIT_PIXELS, (src + 1) * DIGIT_PIXELS), k * DIGIT_PIXELS);
      labels[k] = data.labels[src];
    }
  }
  return { images, labels, count };
}

/**
 * How many MNIST examples to mix with `count` new ones so MNIST is `fraction` of the whole, and
 * which (a seeded sample without replacement).
 */
export function rehearsalSample(count: number, fraction: number, available: number, seed: number): Uint32Array {
  if (fraction <= 0) return new Uint32Array(0);
  const want = Math.min(available, Math.round((count * fraction) / (1 - fraction)));
  return shuffleInPlace(range(available), mulberry32(seed ^ 0x27d4eb2d)).slice(0, want);
}

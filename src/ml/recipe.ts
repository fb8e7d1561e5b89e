/**
 * The time-to-accuracy recipe's fixed numbers, in one place for the job schema (its defaults and
 * documentation), the trainer and the benchmarks. See README, "Training recipe", for how they were
 * chosen and what they reach.
 */

/** One-cycle shape: PyTorch OneCycleLR's defaults (pct_start, div_factor, final_div_factor). */
export const ONE_CYCLE = { warmup: 0.3, startDivisor: 25, endDivisor: 1e4 } as const;

export const BATCH_SIZE_MIN = 32;
export const BATCH_SIZE_MAX = 256;
/** Optimizer steps a default-sized job takes at least, unless its batches are already BATCH_SIZE_MIN. */
export const TARGET_STEPS = 400;

/**
 * The default batch size of a train job: the largest power of two from BATCH_SIZE_MIN to
 * BATCH_SIZE_MAX that still gives TARGET_STEPS steps over the whole job. Big batches are faster per
 * image (and the one-cycle schedule tolerates them), but a small job needs its steps: 3,000 images ×
 * 1 epoch at batch 128 is 24 steps and ~88 %, at batch 32 it is 94 steps and over 90 %.
 */
export function defaultBatchSize(examples: number, epochs: number): number {
  const fits = Math.max(1, Math.floor((examples * epochs) / TARGET_STEPS));
  const power = 2 ** Math.floor(Math.log2(fits));
  return Math.min(BATCH_SIZE_MAX, Math.max(BATCH_SIZE_MIN, power));
}

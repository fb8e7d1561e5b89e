import { ONE_CYCLE } from '../schemas/jobs.ts';

/**
 * Learning-rate schedules as pure functions of the optimizer step (0-based, counted over the whole
 * training), so a training resumed mid-epoch from a checkpoint picks up the very rate it stopped at.
 */
export type Schedule = (step: number) => number;

export interface OneCycleOptions {
  /** The highest rate, reached at the end of the warm-up. */
  peak: number;
  totalSteps: number;
  /** Share of the steps spent warming up from peak / startDivisor to the peak. */
  warmup: number;
  /** The first rate is peak / startDivisor. */
  startDivisor: number;
  /** The last rate is peak / startDivisor / endDivisor. */
  endDivisor: number;
}

/**
 * Smith & Topin's one-cycle ("super-convergence"), shaped as PyTorch's OneCycleLR with cosine
 * annealing and no momentum cycle: a cosine rise from peak/startDivisor to the peak over the first
 * `warmup` share of the steps, then a cosine fall to peak/(startDivisor·endDivisor) at the last step.
 */
export function oneCycle(opts: OneCycleOptions): Schedule {
  const start = opts.peak / opts.startDivisor;
  const end = start / opts.endDivisor;
  const last = Math.max(1, opts.totalSteps - 1);
  const peakStep = Math.max(1, Math.round(opts.warmup * last));
  const cosine = (from: number, to: number, t: number) => to + ((from - to) * (1 + Math.cos(Math.PI * Math.min(1, Math.max(0, t))))) / 2;
  return (step) => (step <= peakStep ? cosine(start, opts.peak, step / peakStep) : cosine(opts.peak, end, (step - peakStep) / Math.max(1, last - peakStep)));
}

/** The last quarter of the epochs (rounded down, so none below 4 epochs) at a tenth of the rate. */
export function stepDecay(rate: number, epochs: number, stepsPerEpoch: number): Schedule {
  const fastSteps = (epochs - Math.floor(epochs / 4)) * stepsPerEpoch;
  return (step) => (step >= fastSteps ? rate / 10 : rate);
}

export function constant(rate: number): Schedule {
  return () => rate;
}

export type ScheduleName = 'one-cycle' | 'step' | 'constant';

/** A job's schedule by name; `rate` is the peak under one-cycle, the rate before the drop under step. */
export interface ScheduleSpec {
  name: ScheduleName;
  rate: number;
}

/** The schedule of a training of `epochs` × `stepsPerEpoch` optimizer steps. */
export function makeSchedule(spec: ScheduleSpec, epochs: number, stepsPerEpoch: number): Schedule {
  switch (spec.name) {
    case 'one-cycle':
      return oneCycle({ peak: spec.rate, totalSteps: epochs * stepsPerEpoch, ...ONE_CYCLE });
    case 'step':
      return stepDecay(spec.rate, epochs, stepsPerEpoch);
    case 'constant':
      return constant(spec.rate);
  }
}

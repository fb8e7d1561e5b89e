import { NUM_CLASSES } from '../../schemas/digit.ts';
import type { OnnxParity } from '../../schemas/models.ts';

/** At most this far apart, probability by probability, or the export is refused. */
export const MAX_PROBABILITY_DIFFERENCE = 1e-5;
/** Images whose top two probabilities are closer than this may flip class on rounding; the rest must agree. */
export const AMBIGUOUS_MARGIN = 1e-4;

/** The comparison's figures as metadata.json records them (timings aside), and its verdict. */
export type ParityReport = Omit<OnnxParity, 'tfjsSeconds' | 'onnxSeconds'> & { passed: boolean };

/** Compares two engines' probabilities for the same images ([images × classes], row-major). */
export function compareProbabilities(reference: Float32Array, candidate: Float32Array, classes = NUM_CLASSES): ParityReport {
  if (reference.length !== candidate.length || reference.length % classes !== 0) {
    throw new RangeError(`${reference.length} and ${candidate.length} probabilities are not two sets of ${classes}-class rows`);
  }
  const images = reference.length / classes;
  let maxDifference = 0;
  let disagreements = 0;
  let ambiguous = 0;
  for (let i = 0; i < images; i++) {
    const row = i * classes;
    let best = 0;
    let second = -1;
    let candidateBest = 0;
    for (let c = 0; c < classes; c++) {
      const difference = Math.abs(reference[row + c] - candidate[row + c]);
      // NaN on either side is no parity at all.
      maxDifference = Number.isNaN(difference) ? Infinity : Math.max(maxDifference, difference);
      if (c > 0 && candidate[row + c] > candidate[row + candidateBest]) candidateBest = c;
      if (c === 0) continue;
      if (reference[row + c] > reference[row + best]) {
        second = best;
        best = c;
      } else if (second < 0 || reference[row + c] > reference[row + second]) second = c;
    }
    if (reference[row + best] - reference[row + second] <= AMBIGUOUS_MARGIN) ambiguous++;
    else if (candidateBest !== best) disagreements++;
  }
  return {
    images,
    maxProbabilityDifference: maxDifference,
    argmaxDisagreements: disagreements,
    ambiguousImages: ambiguous,
    passed: images > 0 && maxDifference <= MAX_PROBABILITY_DIFFERENCE && disagreements === 0,
  };
}

import { NUM_CLASSES } from '../schemas/digit.ts';

export interface Prediction {
  digit: number;
  confidence: number;
  probabilities: number[];
  /** Set by the API when the image was kept for corrections. */
  predictionId?: string;
}

/** A model call's output (count × 10 probabilities) as one answer per image: the likeliest digit first. */
export function toPredictions(probabilities: Float32Array, count: number): Prediction[] {
  return Array.from({ length: count }, (_, i) => {
    const p = Array.from(probabilities.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES));
    let digit = 0;
    for (let c = 1; c < NUM_CLASSES; c++) if (p[c] > p[digit]) digit = c;
    return { digit, confidence: p[digit], probabilities: p };
  });
}

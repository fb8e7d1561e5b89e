import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { gatherBatch } from './batch.ts';
import type { LabelledImages } from '../data/labelled-images.ts';
import { range } from './random.ts';
import { NUM_CLASSES } from '../schemas/digit.ts';

export interface Evaluation {
  accuracy: number;
  /** Mean categorical cross-entropy. */
  loss: number;
  /** confusionMatrix[actual][predicted] counts. */
  confusionMatrix: number[][];
  count: number;
}

const EPSILON = 1e-7; // the clip Keras applies before log in categorical cross-entropy

class Tally {
  readonly confusion = Array.from({ length: NUM_CLASSES }, () => new Array<number>(NUM_CLASSES).fill(0));
  lossSum = 0;
  correct = 0;
  count = 0;

  addBatch(model: LayersModel, data: LabelledImages, batchIdx: Uint32Array): void {
    // One call for the whole batch: predict's default (batches of 32, sliced and concatenated) is ~30% slower here.
    const probs = tf.tidy(() => model.predict(gatherBatch(data, batchIdx).xs, { batchSize: batchIdx.length }) as tf.Tensor2D);
    const p = probs.dataSync();
    probs.dispose();
    for (let i = 0; i < batchIdx.length; i++) {
      const label = data.labels[batchIdx[i]];
      const row = i * NUM_CLASSES;
      let best = 0;
      for (let c = 1; c < NUM_CLASSES; c++) if (p[row + c] > p[row + best]) best = c;
      this.confusion[label][best]++;
      if (best === label) this.correct++;
      this.lossSum -= Math.log(Math.min(1 - EPSILON, Math.max(EPSILON, p[row + label])));
    }
    this.count += batchIdx.length;
  }

  result(): Evaluation {
    const n = this.count;
    return { accuracy: n ? this.correct / n : 0, loss: n ? this.lossSum / n : 0, confusionMatrix: this.confusion, count: n };
  }
}

/** Runs the model over every example in batches and accumulates loss, accuracy and the confusion matrix. */
export function evaluate(model: LayersModel, data: LabelledImages, indices: Uint32Array = range(data.count), batchSize = 1000): Evaluation {
  const tally = new Tally();
  for (let start = 0; start < indices.length; start += batchSize) tally.addBatch(model, data, indices.subarray(start, Math.min(start + batchSize, indices.length)));
  return tally.result();
}

/** Accuracy of each digit: the confusion matrix diagonal over its row. */
export function perClassAccuracy(confusion: number[][]): (number | null)[] {
  return confusion.map((row, digit) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total ? row[digit] / total : null;
  });
}

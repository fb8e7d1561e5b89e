import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { NUM_CLASSES } from './architectures.ts';
import { gatherBatch, type Examples } from './batch.ts';
import { range } from './random.ts';

export interface Evaluation {
  accuracy: number;
  /** Mean categorical cross-entropy. */
  loss: number;
  /** confusionMatrix[actual][predicted] counts. */
  confusionMatrix: number[][];
  count: number;
}

const EPSILON = 1e-7; // the clip Keras applies before log in categorical cross-entropy

/** Runs the model over every example in batches and accumulates loss, accuracy and the confusion matrix. */
export function evaluate(model: LayersModel, data: Examples, indices: Uint32Array = range(data.count), batchSize = 1000): Evaluation {
  const confusion = Array.from({ length: NUM_CLASSES }, () => new Array<number>(NUM_CLASSES).fill(0));
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < indices.length; start += batchSize) {
    const batchIdx = indices.subarray(start, Math.min(start + batchSize, indices.length));
    const probs = tf.tidy(() => {
      const { xs } = gatherBatch(data, batchIdx);
      return model.predict(xs) as tf.Tensor2D;
    });
    const p = probs.dataSync();
    probs.dispose();
    for (let i = 0; i < batchIdx.length; i++) {
      const label = data.labels[batchIdx[i]];
      const row = i * NUM_CLASSES;
      let best = 0;
      for (let c = 1; c < NUM_CLASSES; c++) if (p[row + c] > p[row + best]) best = c;
      confusion[label][best]++;
      if (best === label) correct++;
      lossSum -= Math.log(Math.min(1 - EPSILON, Math.max(EPSILON, p[row + label])));
    }
  }
  const count = indices.length;
  return { accuracy: count ? correct / count : 0, loss: count ? lossSum / count : 0, confusionMatrix: confusion, count };
}

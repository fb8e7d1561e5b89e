import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';

/** One replica's share of a training step: the gradients of its examples' mean loss, and its metrics. */
export interface BatchGradients {
  count: number;
  /** Mean categorical cross-entropy over `count` examples. */
  loss: number;
  /** Fraction of the `count` examples classified right. */
  accuracy: number;
  /** One array per trainable weight, in `model.trainableWeights` order. */
  grads: Float32Array[];
}

/**
 * What `trainOnBatch` computes for a model compiled with categorical cross-entropy and the accuracy
 * metric, minus the optimizer step: so replicas can each take part of a batch and one optimizer
 * applies their (weighted) mean, which is the gradient of the whole batch's mean loss.
 */
export function batchGradients(model: LayersModel, xs: tf.Tensor, ys: tf.Tensor): BatchGradients {
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  let accuracy: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const predicted = model.apply(xs, { training: true }) as tf.Tensor;
    // Kept: variableGrads disposes every other tensor its function made.
    accuracy = tf.keep(tf.mean(tfl.metrics.categoricalAccuracy(ys, predicted)) as tf.Scalar);
    return tf.mean(tfl.metrics.categoricalCrossentropy(ys, predicted));
  }, variables);
  try {
    return {
      count: xs.shape[0],
      loss: value.dataSync()[0],
      accuracy: accuracy!.dataSync()[0],
      grads: variables.map((v) => grads[v.name].dataSync() as Float32Array),
    };
  } finally {
    tf.dispose([value, accuracy!, ...Object.values(grads)]);
  }
}

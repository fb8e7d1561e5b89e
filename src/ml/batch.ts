import * as tf from '@tensorflow/tfjs-core';
import { NUM_CLASSES } from './architectures.ts';

export const PIXELS = 28 * 28;

export interface Examples {
  /** count × 784 bytes, 0 = background, 255 = ink. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

/** Scales bytes to [0, 1] floats in the model's input layout [n, 28, 28, 1]. */
export function imagesToTensor(pixels: Uint8Array, count: number): tf.Tensor4D {
  const floats = new Float32Array(count * PIXELS);
  for (let i = 0; i < floats.length; i++) floats[i] = pixels[i] / 255;
  return tf.tensor4d(floats, [count, 28, 28, 1]);
}

/** Gathers the examples at `indices` into an input tensor and a one-hot label tensor. */
export function gatherBatch(data: Examples, indices: ArrayLike<number>): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
  const n = indices.length;
  const floats = new Float32Array(n * PIXELS);
  const oneHot = new Float32Array(n * NUM_CLASSES);
  for (let i = 0; i < n; i++) {
    const src = indices[i] * PIXELS;
    const dst = i * PIXELS;
    for (let p = 0; p < PIXELS; p++) floats[dst + p] = data.images[src + p] / 255;
    oneHot[i * NUM_CLASSES + data.labels[indices[i]]] = 1;
  }
  return { xs: tf.tensor4d(floats, [n, 28, 28, 1]), ys: tf.tensor2d(oneHot, [n, NUM_CLASSES]) };
}

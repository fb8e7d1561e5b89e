import * as tf from '@tensorflow/tfjs-core';
import type { LabelledImages } from '../data/labelled-images.ts';
import { DIGIT_PIXELS, DIGIT_SIZE, NUM_CLASSES } from '../schemas/digit.ts';

/** Scales bytes to [0, 1] floats in the model's input layout [n, DIGIT_SIZE, DIGIT_SIZE, 1]. */
export function imagesToTensor(pixels: Uint8Array, count: number): tf.Tensor4D {
  const floats = new Float32Array(count * DIGIT_PIXELS);
  for (let i = 0; i < floats.length; i++) floats[i] = pixels[i] / 255;
  return tf.tensor4d(floats, [count, DIGIT_SIZE, DIGIT_SIZE, 1]);
}

/** Gathers the examples at `indices` into an input tensor and a one-hot label tensor. */
export function gatherBatch(data: LabelledImages, indices: ArrayLike<number>): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
  const n = indices.length;
  const floats = new Float32Array(n * DIGIT_PIXELS);
  const oneHot = new Float32Array(n * NUM_CLASSES);
  for (let i = 0; i < n; i++) {
    const src = indices[i] * DIGIT_PIXELS;
    const dst = i * DIGIT_PIXELS;
    for (let p = 0; p < DIGIT_PIXELS; p++) floats[dst + p] = data.images[src + p] / 255;
    oneHot[i * NUM_CLASSES + data.labels[indices[i]]] = 1;
  }
  return { xs: tf.tensor4d(floats, [n, DIGIT_SIZE, DIGIT_SIZE, 1]), ys: tf.tensor2d(oneHot, [n, NUM_CLASSES]) };
}

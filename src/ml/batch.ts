import * as tf from '@tensorflow/tfjs-core';
import type { LabelledImages } from '../data/labelled-images.ts';
import { DIGIT_PIXELS, DIGIT_SIZE, NUM_CLASSES } from '../schemas/digit.ts';

/** The model's input values: bytes scaled to [0, 1], the same for every engine. */
export function scalePixels(pixels: Uint8Array): Float32Array {
  const floats = new Float32Array(pixels.length);
  for (let i = 0; i < floats.length; i++) floats[i] = pixels[i] / 255;
  return floats;
}

/** The images at `indices`, scaled like scalePixels, one after another. */
export function gatherPixels(images: Uint8Array, indices: ArrayLike<number>): Float32Array {
  const floats = new Float32Array(indices.length * DIGIT_PIXELS);
  for (let i = 0; i < indices.length; i++) {
    const src = indices[i] * DIGIT_PIXELS;
    const dst = i * DIGIT_PIXELS;
    for (let p = 0; p < DIGIT_PIXELS; p++) floats[dst + p] = images[src + p] / 255;
  }
  return floats;
}

/** Scales bytes to [0, 1] floats in the model's input layout [n, DIGIT_SIZE, DIGIT_SIZE, 1]. */
export function imagesToTensor(pixels: Uint8Array, count: number): tf.Tensor4D {
  return tf.tensor4d(scalePixels(pixels.subarray(0, count * DIGIT_PIXELS)), [count, DIGIT_SIZE, DIGIT_SIZE, 1]);
}

/** Gathers the examples at `indices` into an input tensor and a one-hot label tensor. */
export function gatherBatch(data: LabelledImages, indices: ArrayLike<number>): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
  const n = indices.length;
  const oneHot = new Float32Array(n * NUM_CLASSES);
  for (let i = 0; i < n; i++) oneHot[i * NUM_CLASSES + data.labels[indices[i]]] = 1;
  return { xs: tf.tensor4d(gatherPixels(data.images, indices), [n, DIGIT_SIZE, DIGIT_SIZE, 1]), ys: tf.tensor2d(oneHot, [n, NUM_CLASSES]) };
}

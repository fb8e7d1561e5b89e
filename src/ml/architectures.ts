import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export const ARCHITECTURES = ['cnn', 'lenet5'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export const INPUT_SHAPE: [number, number, number] = [28, 28, 1];
export const NUM_CLASSES = 10;

/** Each layer gets its own seed derived from the job's, so a seeded job starts from the same weights. */
function initializer(seed: number | undefined, layer: number) {
  return seed === undefined ? 'glorotUniform' : tfl.initializers.glorotUniform({ seed: seed * 31 + layer });
}

/**
 * The classic MNIST CNN: two 5×5 conv + ReLU + 2×2 max-pool blocks (16 then 32 filters), then a
 * dense softmax over the 10 digits. ~29k parameters; ~99% test accuracy.
 */
export function createCnn(seed?: number): tfl.Sequential {
  return tfl.sequential({
    name: 'cnn',
    layers: [
      tfl.layers.conv2d({ inputShape: INPUT_SHAPE, filters: 16, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: initializer(seed, 1), name: 'conv1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'pool1' }),
      tfl.layers.conv2d({ filters: 32, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: initializer(seed, 2), name: 'conv2' }),
      tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'pool2' }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({ units: NUM_CLASSES, activation: 'softmax', kernelInitializer: initializer(seed, 3), name: 'logits' }),
    ],
  });
}

/**
 * LeNet-5 (LeCun et al., 1998) in its modern form: ReLU and max-pooling instead of scaled tanh and
 * sub-sampling. The 28×28 input is padded ('same') so the first feature maps are 6@28×28, as the
 * paper's 32×32 input gave.
 */
export function createLenet5(seed?: number): tfl.Sequential {
  return tfl.sequential({
    name: 'lenet5',
    layers: [
      tfl.layers.conv2d({ inputShape: INPUT_SHAPE, filters: 6, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: initializer(seed, 1), name: 'c1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 's2' }),
      tfl.layers.conv2d({ filters: 16, kernelSize: 5, padding: 'valid', activation: 'relu', kernelInitializer: initializer(seed, 2), name: 'c3' }),
      tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 's4' }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({ units: 120, activation: 'relu', kernelInitializer: initializer(seed, 3), name: 'c5' }),
      tfl.layers.dense({ units: 84, activation: 'relu', kernelInitializer: initializer(seed, 4), name: 'f6' }),
      tfl.layers.dense({ units: NUM_CLASSES, activation: 'softmax', kernelInitializer: initializer(seed, 5), name: 'output' }),
    ],
  });
}

const FACTORIES: Record<Architecture, (seed?: number) => tfl.Sequential> = { cnn: createCnn, lenet5: createLenet5 };

/** A fresh, compiled model (Adam with the given learning rate, cross-entropy over one-hot labels). */
export function createModel(architecture: Architecture, opts: { learningRate: number; seed?: number }): tfl.Sequential {
  const model = FACTORIES[architecture](opts.seed);
  model.compile({ optimizer: tf.train.adam(opts.learningRate), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

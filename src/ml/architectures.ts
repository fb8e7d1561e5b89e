import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { SpatialTransformer } from './layers/spatial-transformer.ts';
import { DIGIT_SHAPE, NUM_CLASSES } from '../schemas/digit.ts';
import { type Architecture } from '../schemas/jobs.ts';

/** Each layer gets its own seed derived from the job's, so a seeded job starts from the same weights. */
function initializer(seed: number | undefined, layer: number) {
  return seed === undefined ? 'glorotUniform' : tfl.initializers.glorotUniform({ seed: seed * 31 + layer });
}

/** The `cnn` feature extractor and head, as layers to stack on any input (the STN puts its sampler in front). */
function cnnLayers(seed: number | undefined, first: { inputShape?: [number, number, number] } = {}): tfl.layers.Layer[] {
  return [
    tfl.layers.conv2d({ ...first, filters: 16, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: initializer(seed, 1), name: 'conv1' }),
    tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'pool1' }),
    tfl.layers.conv2d({ filters: 32, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: initializer(seed, 2), name: 'conv2' }),
    tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'pool2' }),
    tfl.layers.flatten({ name: 'flatten' }),
    tfl.layers.dense({ units: NUM_CLASSES, activation: 'softmax', kernelInitializer: initializer(seed, 3), name: 'logits' }),
  ];
}

/**
 * The classic MNIST CNN: two 5×5 conv + ReLU + 2×2 max-pool blocks (16 then 32 filters), then a
 * dense softmax over the 10 digits. ~29k parameters; ~99% test accuracy.
 */
export function createCnn(seed?: number): tfl.LayersModel {
  return tfl.sequential({ name: 'cnn', layers: cnnLayers(seed, { inputShape: DIGIT_SHAPE }) });
}

/**
 * LeNet-5 (LeCun et al., 1998) in its modern form: ReLU and max-pooling instead of scaled tanh and
 * sub-sampling. The 28×28 input is padded ('same') so the first feature maps are 6@28×28, as the
 * paper's 32×32 input gave.
 */
export function createLenet5(seed?: number): tfl.LayersModel {
  return tfl.sequential({
    name: 'lenet5',
    layers: [
      tfl.layers.conv2d({ inputShape: DIGIT_SHAPE, filters: 6, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: initializer(seed, 1), name: 'c1' }),
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

/** The affine matrix [[1, 0, 0], [0, 1, 0]], row-major: the sampler starts by passing the image through. */
const IDENTITY_AFFINE = [1, 0, 0, 0, 1, 0];

/**
 * A spatial transformer network (Jaderberg et al., 2015) in front of the `cnn`: a small
 * localisation network looks at the digit and predicts a 2×3 affine matrix, a bilinear sampler warps
 * the digit by it, and the classifier sees the corrected digit. The matrix's layer starts at the
 * identity (zero kernel, identity bias), so training begins as a plain `cnn` and learns the
 * correction only as far as it lowers the loss: the learned answer to rotated and scaled digits.
 */
export function createStn(seed?: number): tfl.LayersModel {
  const input = tfl.input({ shape: DIGIT_SHAPE, name: 'image' });
  let loc = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'loc_pool0' }).apply(input) as tfl.SymbolicTensor;
  loc = tfl.layers.conv2d({ filters: 8, kernelSize: 5, activation: 'relu', kernelInitializer: initializer(seed, 11), name: 'loc_conv1' }).apply(loc) as tfl.SymbolicTensor;
  loc = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'loc_pool1' }).apply(loc) as tfl.SymbolicTensor;
  loc = tfl.layers.conv2d({ filters: 10, kernelSize: 3, activation: 'relu', kernelInitializer: initializer(seed, 12), name: 'loc_conv2' }).apply(loc) as tfl.SymbolicTensor;
  loc = tfl.layers.flatten({ name: 'loc_flatten' }).apply(loc) as tfl.SymbolicTensor;
  loc = tfl.layers.dense({ units: 32, activation: 'relu', kernelInitializer: initializer(seed, 13), name: 'loc_dense' }).apply(loc) as tfl.SymbolicTensor;
  const theta = tfl.layers
    .dense({ units: 6, kernelInitializer: 'zeros', biasInitializer: tfl.initializers.constant({ value: 0 }), name: 'loc_affine' })
    .apply(loc) as tfl.SymbolicTensor;
  const warped = new SpatialTransformer({ name: 'transformer' }).apply([input, theta]) as tfl.SymbolicTensor;
  let x = warped;
  for (const layer of cnnLayers(seed)) x = layer.apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ name: 'stn', inputs: input, outputs: x });
  // The identity bias is set after building: constant initializers take one value for every element.
  const affine = model.getLayer('loc_affine');
  const identity = tf.tensor1d(IDENTITY_AFFINE);
  affine.setWeights([affine.getWeights()[0], identity]);
  identity.dispose(); // setWeights copies it
  return model;
}

/**
 * A small residual network (He et al., 2016) with batch normalisation, shaped for MNIST on a CPU:
 * a 5×5 stem (32 filters) and 2×2 max-pool to 14×14, a residual block of two 3×3 convolutions
 * there (32 filters), a block that halves the size to 7×7 with a stride-2 convolution (64 filters,
 * a 1×1 stride-2 projection on its shortcut), global average pooling and a dense softmax. ~85k
 * parameters. Nothing runs at 28×28 but the stem: the full-size stages are what makes a wider net
 * slow on the wasm backend, while accuracy comes from the stages at 14×14 and 7×7.
 */
export function createResnet(seed?: number): tfl.LayersModel {
  let n = 20;
  const conv = (x: tfl.SymbolicTensor, filters: number, kernelSize: number, strides: number, name: string) =>
    tfl.layers.conv2d({ filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: heInit(seed, n++), name }).apply(x) as tfl.SymbolicTensor;
  // Momentum 0.9 (PyTorch's default) rather than Keras's 0.99: the moving statistics must be right
  // after the few hundred steps of a short job, or inference normalises by the initial ones.
  const bn = (x: tfl.SymbolicTensor, name: string) => tfl.layers.batchNormalization({ momentum: 0.9, name }).apply(x) as tfl.SymbolicTensor;
  const relu = (x: tfl.SymbolicTensor, name: string) => tfl.layers.reLU({ name }).apply(x) as tfl.SymbolicTensor;
  const block = (x: tfl.SymbolicTensor, filters: number, strides: number, name: string) => {
    let y = relu(bn(conv(x, filters, 3, strides, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
    y = bn(conv(y, filters, 3, 1, `${name}_conv2`), `${name}_bn2`);
    const shortcut = strides === 1 && x.shape[3] === filters ? x : bn(conv(x, filters, 1, strides, `${name}_proj`), `${name}_proj_bn`);
    return relu(tfl.layers.add({ name: `${name}_add` }).apply([y, shortcut]) as tfl.SymbolicTensor, `${name}_out`);
  };
  const input = tfl.input({ shape: DIGIT_SHAPE, name: 'image' });
  // The stem is conv + ReLU without batch norm: at 28×28×32 a batch-norm layer costs as much as the
  // two blocks' and adds little after one convolution of a normalised image.
  let x = tfl.layers.conv2d({ filters: 32, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: heInit(seed, n++), name: 'stem_conv' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'stem_pool' }).apply(x) as tfl.SymbolicTensor;
  x = block(x, 32, 1, 'block1');
  x = block(x, 64, 2, 'block2');
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  const output = tfl.layers.dense({ units: NUM_CLASSES, activation: 'softmax', kernelInitializer: initializer(seed, n++), name: 'logits' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ name: 'resnet', inputs: input, outputs: output });
}

/** He initialisation for convolutions followed by ReLU (through batch norm), seeded like the rest. */
function heInit(seed: number | undefined, layer: number) {
  return seed === undefined ? 'heNormal' : tfl.initializers.heNormal({ seed: seed * 31 + layer });
}

const FACTORIES: Record<Architecture, (seed?: number) => tfl.LayersModel> = { cnn: createCnn, lenet5: createLenet5, stn: createStn, resnet: createResnet };

export interface OptimizerOptions {
  learningRate: number;
  /** Adam's decay rates of its gradient mean and squared-gradient mean (Adam's own defaults: 0.9, 0.999). */
  beta1?: number;
  beta2?: number;
}

/** Compiles for training: Adam, cross-entropy over one-hot labels, accuracy. */
export function compileForTraining(model: tfl.LayersModel, opts: OptimizerOptions): void {
  model.compile({ optimizer: tf.train.adam(opts.learningRate, opts.beta1 ?? 0.9, opts.beta2 ?? 0.999), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
}

/** A fresh, compiled model. */
export function createModel(architecture: Architecture, opts: OptimizerOptions & { seed?: number }): tfl.LayersModel {
  const model = FACTORIES[architecture](opts.seed);
  compileForTraining(model, opts);
  return model;
}

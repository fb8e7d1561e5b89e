import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { createCnn, createLenet5, createResnet, createStn } from '../../src/ml/architectures.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { SpatialTransformer } from '../../src/ml/layers/spatial-transformer.ts';
import { loadModel } from '../../src/ml/load-model.ts';
import { filesToArtifacts } from '../../src/ml/model-files.ts';
import { exportOnnx, ONNX_INPUT, ONNX_OUTPUT, OnnxUnsupportedError, tfPads } from '../../src/ml/onnx/export-onnx.ts';
import { compareProbabilities } from '../../src/ml/onnx/onnx-parity.ts';
import { OnnxModel, onnxRuntime } from '../../src/ml/onnx/onnx-session.ts';
import { mulberry32 } from '../../src/ml/random.ts';
import { serializeModel } from '../../src/ml/serialize.ts';

/**
 * The exporter, layer type by layer type: small models with random (non-trivial) weights, run by
 * TF.js and by ONNX Runtime on the same random inputs, must agree within TOLERANCE element by element.
 * The models end in a Flatten (or a Dense) so that the whole output of the layer under test is compared.
 */

before(() => initBackend('wasm'));

const TOLERANCE = 1e-5;
type Shape = [number, number, number];

/** Uniform values in [low, high), seeded. */
function uniform(size: number, random: () => number, low = -1, high = 1): Float32Array {
  return Float32Array.from({ length: size }, () => low + (high - low) * random());
}

/**
 * Every weight of `model` replaced by random values of a sensible size: kernels ~ U(±√(3/fan-in))
 * (unit-variance outputs), biases and batch-norm betas/means ~ U(±0.5), gammas ~ U(0.5, 1.5),
 * moving variances ~ U(0.3, 1.8).
 */
function randomizeWeights(model: tfl.LayersModel, seed: number): void {
  const random = mulberry32(seed);
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const values = layer.weights.map((w) => {
      const shape = w.shape as number[];
      const size = shape.reduce((a, b) => a * b, 1);
      const kind = w.originalName.split('/').pop()!;
      let data: Float32Array;
      if (kind.startsWith('kernel')) {
        const fanIn = size / shape[shape.length - 1];
        const a = Math.sqrt(3 / fanIn);
        data = uniform(size, random, -a, a);
      } else if (kind.startsWith('gamma')) data = uniform(size, random, 0.5, 1.5);
      else if (kind.startsWith('moving_variance')) data = uniform(size, random, 0.3, 1.8);
      else data = uniform(size, random, -0.5, 0.5); // bias, beta, moving_mean
      return tf.tensor(data, shape);
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
}

/**
 * Every weight of `model` moved away from where it starts: kernels and biases by up to half their
 * spread (0.1 where they are constant), batch-norm statistics replaced as in randomizeWeights.
 */
function perturbWeights(model: tfl.LayersModel, seed: number): void {
  const random = mulberry32(seed);
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const values = layer.getWeights().map((w, i) => {
      const kind = layer.weights[i].originalName.split('/').pop()!;
      const data = Float32Array.from(w.dataSync());
      if (kind.startsWith('gamma')) return tf.tensor(uniform(data.length, random, 0.5, 1.5), w.shape);
      if (kind.startsWith('moving_variance')) return tf.tensor(uniform(data.length, random, 0.3, 1.8), w.shape);
      if (kind.startsWith('moving_mean') || kind.startsWith('beta')) return tf.tensor(uniform(data.length, random, -0.5, 0.5), w.shape);
      const mean = data.reduce((a, b) => a + b, 0) / data.length;
      const std = Math.sqrt(data.reduce((a, b) => a + (b - mean) ** 2, 0) / data.length);
      const spread = std > 0 ? 0.5 * std : 0.1;
      for (let k = 0; k < data.length; k++) data[k] += spread * (2 * random() - 1);
      return tf.tensor(data, w.shape);
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
}

/** A functional model: `input` of `shape`, then `build`. */
function modelOf(shape: Shape, build: (x: tfl.SymbolicTensor) => tfl.SymbolicTensor): tfl.LayersModel {
  const input = tfl.input({ shape });
  return tfl.model({ inputs: input, outputs: build(input) });
}

const apply = (layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]) => layer.apply(x) as tfl.SymbolicTensor;
const flatten = (x: tfl.SymbolicTensor) => apply(tfl.layers.flatten(), x);

/** The exported model run by ONNX Runtime (one thread) on `input` of `shape` [n, H, W, C]. */
async function runOnnx(bytes: Uint8Array, input: Float32Array, shape: number[]): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const ort = await onnxRuntime();
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const tensor = new ort.Tensor('float32', input, shape);
  try {
    assert.deepEqual([session.inputNames, session.outputNames], [[ONNX_INPUT], [ONNX_OUTPUT]]);
    const output = (await session.run({ [ONNX_INPUT]: tensor }))[ONNX_OUTPUT];
    return { data: output.data as Float32Array, dims: output.dims };
  } finally {
    tensor.dispose();
    await session.release();
  }
}

interface ParityOptions {
  /** Whether to dispose the model afterwards (default true). */
  dispose?: boolean;
  batch?: number;
  seed?: number;
  /** Range of the random inputs. */
  low?: number;
  high?: number;
}

/**
 * Exports `model`, runs both engines on the same random batch, asserts they agree within
 * TOLERANCE, and returns the reference output, the exported bytes and the largest difference.
 * Disposes the model.
 */
async function assertParity(model: tfl.LayersModel, { dispose = true, batch = 2, seed = 1, low = -1, high = 1 }: ParityOptions = {}) {
  try {
    const shape = [batch, ...(model.inputs[0].shape.slice(1) as number[])];
    const input = uniform(shape.reduce((a, b) => a * b, 1), mulberry32(seed), low, high);
    const reference = tf.tidy(() => (model.predict(tf.tensor(input, shape)) as tf.Tensor).dataSync() as Float32Array);
    const bytes = exportOnnx(model);
    const onnx = await runOnnx(bytes, input, shape);
    assert.deepEqual(onnx.dims, [batch, (model.outputs[0].shape as number[])[1]]);
    assert.equal(onnx.data.length, reference.length);
    let maxDifference = 0;
    for (let i = 0; i < reference.length; i++) {
      const d = Math.abs(reference[i] - onnx.data[i]);
      maxDifference = Number.isNaN(d) ? Infinity : Math.max(maxDifference, d);
    }
    assert.ok(maxDifference <= TOLERANCE, `TF.js and ONNX Runtime differ by up to ${maxDifference}`);
    // A comparison of constants proves nothing: the output must vary.
    assert.ok(Math.max(...reference) - Math.min(...reference) > 1e-2, 'the reference output is (nearly) constant');
    return { reference, bytes, maxDifference };
  } finally {
    if (dispose) model.dispose();
  }
}

/** Whether the encoded model contains `text` (initializer and node names are stored as plain UTF-8). */
function mentions(bytes: Uint8Array, text: string): boolean {
  return Buffer.from(bytes).includes(Buffer.from(text));
}

// ---------------------------------------------------------------------------------------------
// Conv2D

interface ConvCase {
  name: string;
  shape: Shape;
  args: Parameters<typeof tfl.layers.conv2d>[0];
  inputs?: ParityOptions;
}

const CONV_CASES: ConvCase[] = [
  { name: "'same' 3×3, relu", shape: [9, 9, 3], args: { filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' } },
  { name: "'valid' 3×3, linear", shape: [9, 9, 3], args: { filters: 4, kernelSize: 3, padding: 'valid' } },
  { name: "'same' 4×4 stride 2 on 9×9 (TF pads 1 before, 2 after)", shape: [9, 9, 2], args: { filters: 3, kernelSize: 4, strides: 2, padding: 'same' } },
  { name: "'same' 3×3 stride 2 on 10×10 (TF pads 0 before, 1 after)", shape: [10, 10, 2], args: { filters: 3, kernelSize: 3, strides: 2, padding: 'same' } },
  { name: "'same' 3×4 kernel, strides [2, 1], on 9×11 (height and width kept apart)", shape: [9, 11, 2], args: { filters: 3, kernelSize: [3, 4], strides: [2, 1], padding: 'same' } },
  { name: "'valid' 2×3 kernel, strides [1, 2], on 8×9", shape: [8, 9, 2], args: { filters: 3, kernelSize: [2, 3], strides: [1, 2], padding: 'valid' } },
  { name: "'same' 3×3 dilation 2", shape: [9, 9, 2], args: { filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same' } },
  { name: "'valid' 3×3 dilation [2, 1]", shape: [9, 9, 2], args: { filters: 3, kernelSize: 3, dilationRate: [2, 1], padding: 'valid' } },
  { name: "'same' 2×2 dilation 3 (TF pads 1 before, 2 after)", shape: [7, 7, 2], args: { filters: 3, kernelSize: 2, dilationRate: 3, padding: 'same' } },
  { name: '1×1, 5 input channels', shape: [5, 5, 5], args: { filters: 4, kernelSize: 1 } },
  { name: 'without bias, sigmoid', shape: [7, 7, 2], args: { filters: 3, kernelSize: 3, useBias: false, activation: 'sigmoid' } },
  { name: 'tanh', shape: [7, 7, 2], args: { filters: 3, kernelSize: 3, activation: 'tanh' } },
  { name: 'elu', shape: [7, 7, 2], args: { filters: 3, kernelSize: 3, activation: 'elu' } },
  { name: 'selu', shape: [7, 7, 2], args: { filters: 3, kernelSize: 3, activation: 'selu' } },
  { name: 'softplus', shape: [7, 7, 2], args: { filters: 3, kernelSize: 3, activation: 'softplus' } },
  { name: 'softsign', shape: [7, 7, 2], args: { filters: 3, kernelSize: 3, activation: 'softsign' } },
  { name: 'hardSigmoid', shape: [7, 7, 2], args: { filters: 3, kernelSize: 3, activation: 'hardSigmoid' }, inputs: { low: -4, high: 4 } },
  { name: 'relu6 (inputs large enough to reach the cap)', shape: [7, 7, 2], args: { filters: 3, kernelSize: 3, activation: 'relu6' }, inputs: { low: -10, high: 10 } },
  { name: 'softmax over the channels of a 4-D output', shape: [7, 7, 2], args: { filters: 4, kernelSize: 3, padding: 'same', activation: 'softmax' }, inputs: { low: -3, high: 3 } },
];

for (const { name, shape, args, inputs } of CONV_CASES) {
  test(`Conv2D ${name}: ONNX matches TF.js`, async () => {
    const model = modelOf(shape, (x) => flatten(apply(tfl.layers.conv2d(args), x)));
    randomizeWeights(model, 11);
    const { reference } = await assertParity(model, inputs);
    if (args.activation === 'relu6') {
      assert.ok(reference.some((v) => v === 6) && reference.some((v) => v === 0) && reference.some((v) => v > 0 && v < 6), 'relu6 is exercised below 0, between and above 6');
    }
  });
}

test('tfPads splits TF’s "same" padding with the extra pixel at the end', () => {
  assert.deepEqual(tfPads('valid', 9, 3, 1), [0, 0]);
  assert.deepEqual(tfPads('same', 9, 3, 1), [1, 1]);
  assert.deepEqual(tfPads('same', 9, 4, 1), [1, 2]);
  assert.deepEqual(tfPads('same', 9, 4, 2), [1, 2]);
  assert.deepEqual(tfPads('same', 10, 3, 2), [0, 1]);
  assert.deepEqual(tfPads('same', 9, 2, 2), [0, 1]);
  assert.deepEqual(tfPads('same', 9, 3, 1, 2), [2, 2]);
  assert.deepEqual(tfPads('same', 8, 1, 4), [0, 0]);
  assert.throws(() => tfPads('causal', 9, 3, 1), OnnxUnsupportedError);
});

// ---------------------------------------------------------------------------------------------
// Pooling

const POOL_CASES: { pool: Parameters<typeof tfl.layers.maxPooling2d>[0]; shape: Shape }[] = [
  { pool: { poolSize: 2, strides: 2, padding: 'valid' }, shape: [9, 9, 2] },
  { pool: { poolSize: 2, strides: 2, padding: 'same' }, shape: [9, 9, 2] }, // pads 0 before, 1 after
  { pool: { poolSize: 3, strides: 2, padding: 'same' }, shape: [9, 9, 2] }, // pads 1 and 1
  { pool: { poolSize: 3, strides: 1, padding: 'same' }, shape: [7, 7, 2] },
  { pool: { poolSize: [3, 2], strides: [2, 1], padding: 'same' }, shape: [9, 8, 2] },
  { pool: { poolSize: [2, 3], padding: 'valid' }, shape: [7, 9, 2] }, // strides default to the pool size
];

for (const kind of ['maxPooling2d', 'averagePooling2d'] as const) {
  for (const { pool, shape } of POOL_CASES) {
    test(`${kind} ${JSON.stringify(pool)} on ${shape.join('×')}: ONNX matches TF.js`, async () => {
      // Negative inputs: a max over padding read as 0 would show; for the average, padding counted
      // as pixels (ONNX's count_include_pad = 1) would shrink the border values.
      const model = modelOf(shape, (x) => flatten(apply(tfl.layers[kind](pool), x)));
      await assertParity(model, { low: -2, high: -0.5 });
    });
  }
}

test('GlobalAveragePooling2D and GlobalMaxPooling2D after a convolution, then Dense: ONNX matches TF.js', async () => {
  for (const global of [tfl.layers.globalAveragePooling2d, tfl.layers.globalMaxPooling2d]) {
    const model = modelOf([7, 7, 2], (x) => apply(tfl.layers.dense({ units: 5 }), apply(global({}), apply(tfl.layers.conv2d({ filters: 6, kernelSize: 3 }), x))));
    randomizeWeights(model, 12);
    await assertParity(model, { batch: 3 });
  }
});

// ---------------------------------------------------------------------------------------------
// Flatten, Dense, Dropout, activations

test('Flatten of a multi-channel map feeds Dense in TF.js’s (NHWC) element order', async () => {
  // A sequential model too, whose input layer is not among model.layers.
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [6, 5, 1], filters: 3, kernelSize: 3, padding: 'same' }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 7 }),
    ],
  });
  randomizeWeights(model, 13);
  await assertParity(model, { batch: 3 });
});

test('Dense with relu, Dropout, Dense with softmax: ONNX matches TF.js', async () => {
  const model = modelOf([4, 4, 2], (x) => {
    let y = apply(tfl.layers.dense({ units: 12, activation: 'relu' }), flatten(x));
    y = apply(tfl.layers.dropout({ rate: 0.5 }), y);
    return apply(tfl.layers.dense({ units: 10, activation: 'softmax' }), y);
  });
  randomizeWeights(model, 14);
  await assertParity(model, { batch: 3, low: -3, high: 3 });
});

test('Dense without bias, then an Activation layer (tanh), a ReLU layer and a Softmax layer', async () => {
  const model = modelOf([3, 3, 2], (x) => {
    let y = apply(tfl.layers.dense({ units: 8, useBias: false }), flatten(x));
    y = apply(tfl.layers.activation({ activation: 'tanh' }), y);
    y = apply(tfl.layers.dense({ units: 6 }), y);
    y = apply(tfl.layers.reLU(), y);
    y = apply(tfl.layers.dense({ units: 5 }), y);
    return apply(tfl.layers.softmax(), y);
  });
  randomizeWeights(model, 15);
  await assertParity(model, { batch: 3, low: -3, high: 3 });
});

test('Activation (softmax, elu), ReLU and Softmax (axis −1) layers on 4-D tensors act over the channels', async () => {
  const model = modelOf([5, 5, 2], (x) => {
    let y = apply(tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }), x);
    y = apply(tfl.layers.activation({ activation: 'elu' }), y);
    y = apply(tfl.layers.conv2d({ filters: 4, kernelSize: 1 }), y);
    y = apply(tfl.layers.reLU(), y);
    y = apply(tfl.layers.conv2d({ filters: 3, kernelSize: 1 }), y);
    const activation = apply(tfl.layers.activation({ activation: 'softmax' }), y);
    const layer = apply(tfl.layers.softmax({ axis: -1 }), apply(tfl.layers.conv2d({ filters: 3, kernelSize: 1 }), y));
    return apply(tfl.layers.concatenate(), [flatten(activation), flatten(layer)]);
  });
  randomizeWeights(model, 16);
  await assertParity(model, { low: -3, high: 3 });
});

// ---------------------------------------------------------------------------------------------
// Batch normalisation

test('BatchNormalization after a linear convolution is folded into it, and matches TF.js', async () => {
  const model = modelOf([7, 7, 2], (x) => flatten(apply(tfl.layers.batchNormalization({ name: 'bn' }), apply(tfl.layers.conv2d({ filters: 4, kernelSize: 3 }), x))));
  randomizeWeights(model, 21);
  const { bytes } = await assertParity(model);
  assert.ok(!mentions(bytes, 'bn/scale'), 'the batch norm has no nodes of its own');
});

test('BatchNormalization without center and scale, with epsilon 0.01, folded after a convolution without bias', async () => {
  const model = modelOf([7, 7, 2], (x) => {
    const conv = apply(tfl.layers.conv2d({ filters: 4, kernelSize: 3, useBias: false }), x);
    return flatten(apply(tfl.layers.batchNormalization({ center: false, scale: false, epsilon: 0.01, name: 'bn' }), conv));
  });
  randomizeWeights(model, 22);
  const { bytes } = await assertParity(model);
  assert.ok(!mentions(bytes, 'bn/scale'));
});

test('BatchNormalization after a ReLU convolution is not folded (the activation is between), and matches TF.js', async () => {
  const model = modelOf([7, 7, 2], (x) => flatten(apply(tfl.layers.batchNormalization({ name: 'bn' }), apply(tfl.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }), x))));
  randomizeWeights(model, 23);
  const { bytes } = await assertParity(model);
  assert.ok(mentions(bytes, 'bn/scale'));
});

test('BatchNormalization on a 2-D Dense output, then softmax: ONNX matches TF.js', async () => {
  const model = modelOf([4, 4, 1], (x) => {
    const dense = apply(tfl.layers.dense({ units: 6 }), flatten(x));
    return apply(tfl.layers.activation({ activation: 'softmax' }), apply(tfl.layers.batchNormalization({ name: 'bn' }), dense));
  });
  randomizeWeights(model, 24);
  const { bytes } = await assertParity(model, { batch: 3 });
  assert.ok(mentions(bytes, 'bn/scale'));
});

test('a convolution read by a batch norm and by a residual Add keeps its own output: the batch norm is not folded', async () => {
  const model = modelOf([6, 6, 2], (x) => {
    const conv = apply(tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }), x);
    const normalised = apply(tfl.layers.batchNormalization({ name: 'bn' }), conv);
    return flatten(apply(tfl.layers.add(), [normalised, conv]));
  });
  randomizeWeights(model, 25);
  const { bytes } = await assertParity(model);
  assert.ok(mentions(bytes, 'bn/scale'));
});

test('a convolution that is the model’s output as well as read by a batch norm is not folded either', async () => {
  // Output through a Concatenate of both flattened: the conv's values must survive unscaled.
  const model = modelOf([5, 5, 2], (x) => {
    const conv = apply(tfl.layers.conv2d({ filters: 3, kernelSize: 3 }), x);
    const normalised = apply(tfl.layers.batchNormalization({ name: 'bn' }), conv);
    return apply(tfl.layers.concatenate(), [flatten(normalised), flatten(conv)]);
  });
  randomizeWeights(model, 26);
  const { bytes } = await assertParity(model);
  assert.ok(mentions(bytes, 'bn/scale'));
});

// ---------------------------------------------------------------------------------------------
// Merges

test('Add: a residual block (conv → BN → relu → conv → BN, plus the input), and a three-way Add', async () => {
  const model = modelOf([6, 6, 3], (x) => {
    let y = apply(tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', useBias: false }), x);
    y = apply(tfl.layers.reLU(), apply(tfl.layers.batchNormalization(), y));
    y = apply(tfl.layers.batchNormalization(), apply(tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', useBias: false }), y));
    const residual = apply(tfl.layers.reLU(), apply(tfl.layers.add(), [y, x]));
    const other = apply(tfl.layers.conv2d({ filters: 3, kernelSize: 1 }), x);
    return flatten(apply(tfl.layers.add(), [residual, other, x]));
  });
  randomizeWeights(model, 31);
  await assertParity(model);
});

test('Concatenate over channels of 4-D maps, and of 2-D features', async () => {
  const model = modelOf([6, 6, 2], (x) => {
    const a = apply(tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }), x);
    const b = apply(tfl.layers.conv2d({ filters: 2, kernelSize: 1 }), x);
    const maps = apply(tfl.layers.concatenate({ axis: 3 }), [a, b, x]);
    const pooled = apply(tfl.layers.globalAveragePooling2d({}), maps);
    const dense = apply(tfl.layers.dense({ units: 4 }), flatten(maps));
    return apply(tfl.layers.concatenate(), [flatten(maps), pooled, dense]);
  });
  randomizeWeights(model, 32);
  await assertParity(model);
});

// ---------------------------------------------------------------------------------------------
// SpatialTransformer

/** Row-major 2×3: rotation by `degrees`, uniform `scale`, shift (tx, ty) in normalised coordinates. */
function affine(degrees: number, scale: number, tx: number, ty: number): number[] {
  const a = (degrees * Math.PI) / 180;
  return [scale * Math.cos(a), -scale * Math.sin(a), tx, scale * Math.sin(a), scale * Math.cos(a), ty];
}

/** Sets a theta-predicting dense layer to `bias` plus a small random kernel, so theta varies by image. */
function setAffine(layer: tfl.layers.Layer, bias: number[], seed: number, kernelScale = 0.02): void {
  const [kernel] = layer.getWeights();
  const values = [tf.tensor(uniform(kernel.size, mulberry32(seed), -kernelScale, kernelScale), kernel.shape), tf.tensor1d(bias)];
  layer.setWeights(values);
  tf.dispose(values);
}

test('stn with a non-identity affine (20°, scale 0.9, shifted) and random weights: the warp and the probabilities match', async () => {
  const model = createStn(3);
  perturbWeights(model, 41);
  setAffine(model.getLayer('loc_affine'), affine(20, 0.9, 0.1, -0.15), 42);
  const warped = tfl.model({ inputs: model.inputs, outputs: flatten(model.getLayer('transformer').output as tfl.SymbolicTensor) });
  // The sampler really warps: its output is far from its input.
  const input = uniform(2 * 784, mulberry32(43), 0, 1);
  const moved = tf.tidy(() => tf.mean(tf.abs(tf.sub(warped.predict(tf.tensor(input, [2, 28, 28, 1])) as tf.Tensor, tf.tensor(input, [2, 784])))).dataSync()[0]);
  assert.ok(moved > 0.1, `the sampler barely moves the image (mean change ${moved})`);
  try {
    await assertParity(warped, { low: 0, high: 1, dispose: false }); // the warped pixels themselves
    await assertParity(model, { low: 0, high: 1, dispose: false }); // and the probabilities
  } finally {
    model.dispose(); // its layers are the sub-model's too
  }
});

test('SpatialTransformer with outputSize 20×20 on a 3-channel map: ONNX matches TF.js', async () => {
  const model = modelOf([12, 12, 1], (x) => {
    const maps = apply(tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }), x);
    const theta = apply(tfl.layers.dense({ units: 6, name: 'theta' }), apply(tfl.layers.dense({ units: 8, activation: 'tanh' }), flatten(x)));
    const sampled = apply(new SpatialTransformer({ outputSize: [20, 20] }), [maps, theta]);
    assert.deepEqual(sampled.shape, [null, 20, 20, 3]);
    return flatten(sampled);
  });
  randomizeWeights(model, 44);
  setAffine(model.getLayer('theta'), affine(-25, 1.1, -0.1, 0.2), 45, 0.05);
  await assertParity(model, { low: 0, high: 1 });
});

// ---------------------------------------------------------------------------------------------
// The four architectures

const ARCHITECTURE_FACTORIES = { cnn: createCnn, lenet5: createLenet5, stn: createStn, resnet: createResnet };

for (const [name, create] of Object.entries(ARCHITECTURE_FACTORIES)) {
  test(`${name} with perturbed weights: OnnxModel matches TF.js, and compareProbabilities passes`, async () => {
    const model = create(1);
    perturbWeights(model, 51);
    // A perturbed identity would barely warp: the stn gets a real affine transform.
    if (name === 'stn') setAffine(model.getLayer('loc_affine'), affine(20, 0.9, 0.1, -0.15), 53);
    // Random images give nearly uniform probabilities; a larger final kernel spreads them, so that
    // the comparison is not between rows of ~0.1.
    const last = model.layers[model.layers.length - 1];
    const sharpened = last.getWeights().map((w, i) => (i === 0 ? tf.mul(w, 10) : w.clone()));
    last.setWeights(sharpened);
    tf.dispose(sharpened);
    const count = 4;
    const random = mulberry32(54);
    const pixels = Uint8Array.from({ length: count * 784 }, () => Math.floor(256 * random()));
    const floats = Float32Array.from(pixels, (p) => p / 255);
    const reference = tf.tidy(() => (model.predict(tf.tensor(floats, [count, 28, 28, 1])) as tf.Tensor).dataSync() as Float32Array);
    const onnx = await OnnxModel.load(exportOnnx(model), { threads: 1 });
    try {
      const candidate = await onnx.run(pixels, count);
      const report = compareProbabilities(reference, candidate);
      assert.ok(report.maxProbabilityDifference <= TOLERANCE, `max difference ${report.maxProbabilityDifference}`);
      assert.deepEqual([report.images, report.argmaxDisagreements, report.passed], [count, 0, true]);
      assert.deepEqual(await onnx.runFloats(floats, count), candidate);
      // Neither near-uniform nor one-hot rows, which would hide differences.
      for (let i = 0; i < count; i++) {
        const top = Math.max(...reference.subarray(i * 10, i * 10 + 10));
        assert.ok(top > 0.2 && top < 0.999, `image ${i}: top probability ${top}`);
      }
    } finally {
      await onnx.dispose();
      model.dispose();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Saved and loaded

test('a model saved and loaded back (twice, so its variables get suffixed names) exports the same bytes and matches TF.js', async () => {
  const model = modelOf([10, 10, 1], (x) => {
    let y = apply(tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'c1' }), x);
    y = apply(tfl.layers.reLU(), apply(tfl.layers.batchNormalization({ name: 'c1_bn' }), y));
    const theta = apply(tfl.layers.dense({ units: 6, name: 'theta' }), flatten(x));
    y = apply(new SpatialTransformer({ name: 'warp' }), [y, theta]);
    y = apply(tfl.layers.batchNormalization({ name: 'warp_bn' }), apply(tfl.layers.maxPooling2d({ poolSize: 2 }), y));
    return apply(tfl.layers.dense({ units: 10, activation: 'softmax', name: 'out' }), flatten(y));
  });
  randomizeWeights(model, 61);
  setAffine(model.getLayer('theta'), affine(15, 0.95, 0.05, 0), 62);
  const original = exportOnnx(model);
  const files = await serializeModel(model);
  const first = await loadModel(filesToArtifacts(files));
  const loaded = await loadModel(filesToArtifacts(files));
  try {
    assert.notDeepEqual(
      loaded.weights.map((w) => w.name),
      model.weights.map((w) => w.name),
    );
    assert.deepEqual(exportOnnx(loaded), original);
  } finally {
    first.dispose();
    model.dispose();
  }
  await assertParity(loaded, { low: 0, high: 1 });
});

// ---------------------------------------------------------------------------------------------
// Refusals

test('a layer without a translation throws OnnxUnsupportedError naming it', () => {
  const cases: [string, (x: tfl.SymbolicTensor) => tfl.SymbolicTensor][] = [
    ['up', (x) => flatten(apply(tfl.layers.conv2dTranspose({ filters: 2, kernelSize: 3, name: 'up' }), x))],
    ['depthwise', (x) => flatten(apply(tfl.layers.depthwiseConv2d({ kernelSize: 3, name: 'depthwise' }), x))],
    ['planar', (x) => flatten(apply(tfl.layers.conv2d({ filters: 2, kernelSize: 3, dataFormat: 'channelsFirst', name: 'planar' }), x))],
    ['planar_pool', (x) => flatten(apply(tfl.layers.maxPooling2d({ poolSize: 2, dataFormat: 'channelsFirst', name: 'planar_pool' }), x))],
    ['capped', (x) => flatten(apply(tfl.layers.reLU({ maxValue: 3, name: 'capped' }), x))],
    // An LSTM needs a 3-D input; the Reshape that makes one is refused first.
    ['to_sequence', (x) => apply(tfl.layers.lstm({ units: 4, recurrentInitializer: 'glorotUniform' }), apply(tfl.layers.reshape({ targetShape: [8, 16], name: 'to_sequence' }), x))],
    // TF.js's Softmax layer defaults to axis 1: on a 4-D tensor, the height.
    ['over_height', (x) => flatten(apply(tfl.layers.softmax({ name: 'over_height' }), x))],
    ['dense4d', (x) => flatten(apply(tfl.layers.dense({ units: 3, name: 'dense4d' }), x))],
  ];
  for (const [name, build] of cases) {
    const model = modelOf([8, 8, 2], build);
    assert.throws(() => exportOnnx(model), (err: Error) => err instanceof OnnxUnsupportedError && err.message.includes(name), name);
    model.dispose();
  }
});

test('an activation without a translation throws OnnxUnsupportedError', () => {
  const model = modelOf([4, 4, 1], (x) => apply(tfl.layers.dense({ units: 3, activation: 'swish' }), flatten(x)));
  assert.throws(() => exportOnnx(model), (err: Error) => err instanceof OnnxUnsupportedError && /swish/.test(err.message));
  model.dispose();
});

test('a model with two inputs, two outputs, a non-image input or a 4-D output throws OnnxUnsupportedError', () => {
  const a = tfl.input({ shape: [4, 4, 1] });
  const b = tfl.input({ shape: [4, 4, 1] });
  const twoInputs = tfl.model({ inputs: [a, b], outputs: flatten(apply(tfl.layers.add(), [a, b])) });
  const twoOutputs = tfl.model({ inputs: a, outputs: [flatten(a), apply(tfl.layers.dense({ units: 2 }), flatten(a))] });
  const flat = tfl.input({ shape: [16] });
  const vectorInput = tfl.model({ inputs: flat, outputs: apply(tfl.layers.dense({ units: 2 }), flat) });
  const imageOutput = modelOf([4, 4, 1], (x) => apply(tfl.layers.conv2d({ filters: 2, kernelSize: 1 }), x));
  for (const model of [twoInputs, twoOutputs, vectorInput, imageOutput]) {
    assert.throws(() => exportOnnx(model), OnnxUnsupportedError);
    model.dispose();
  }
});

test('a layer applied twice (shared weights) throws OnnxUnsupportedError naming it', () => {
  const shared = tfl.layers.dense({ units: 4, name: 'shared' });
  const model = modelOf([2, 2, 1], (x) => apply(shared, apply(shared, flatten(x))));
  assert.throws(() => exportOnnx(model), (err: Error) => err instanceof OnnxUnsupportedError && err.message.includes('shared'));
  model.dispose();
  shared.dispose(); // applied twice, so counted twice
});

test('layers named like the ONNX input and output do not clash with them', async () => {
  const model = modelOf([4, 4, 1], (x) => apply(tfl.layers.dense({ units: 3, name: ONNX_OUTPUT }), apply(tfl.layers.flatten({ name: ONNX_INPUT }), x)));
  randomizeWeights(model, 71);
  await assertParity(model);
});

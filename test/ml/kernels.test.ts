import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers'; // also registers the gradient functions tf.grads needs
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../src/ml/backend.ts';
import { mulberry32 } from '../../src/ml/random.ts';

// The wasm backend (with the project's kernels) against the cpu backend, which implements every
// gradient kernel naively but independently. Data crosses backends as plain arrays.

before(async () => {
  await initBackend('cpu'); // once, so the cpu backend's "install tfjs-node" banner is silenced
  await initBackend('wasm');
});

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

function seeded(size: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: size }, () => random() * 2 - 1);
}

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Max |a−b|, relative to the reference's magnitude when that exceeds 1. */
function maxRelDiff(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

/** Runs `f` on one backend and returns its outputs as arrays, leaving that backend clean. */
async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const outs = f();
  const values = outs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outs);
  return values;
}

/** dx and dW of sum(conv2d(x, w) · r) for a random cotangent r, so every output position weighs differently. */
function convGrads(xShape: Shape4, wShape: Shape4, stride: number, pad: Pad, seed: number): () => tf.Tensor[] {
  const xv = seeded(sizeOf(xShape), seed);
  const wv = seeded(sizeOf(wShape), seed + 1);
  return () =>
    tf.tidy(() => {
      const x = tf.tensor4d(xv, xShape);
      const w = tf.tensor4d(wv, wShape);
      const y = tf.conv2d(x, w, stride, pad);
      const r = tf.tensor(seeded(y.size, seed + 2), y.shape);
      return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), r)))([x, w]);
    });
}

const CONV_CASES: { x: Shape4; w: Shape4; stride: number; pad: Pad }[] = [
  { x: [1, 7, 9, 1], w: [3, 3, 1, 2], stride: 1, pad: 'same' },
  { x: [1, 7, 9, 1], w: [3, 3, 1, 2], stride: 1, pad: 'valid' },
  { x: [3, 7, 9, 2], w: [5, 5, 2, 4], stride: 1, pad: 'same' },
  { x: [3, 7, 9, 2], w: [5, 5, 2, 4], stride: 1, pad: 'valid' },
  { x: [2, 7, 9, 3], w: [3, 3, 3, 5], stride: 2, pad: 'same' },
  { x: [2, 7, 9, 3], w: [3, 3, 3, 5], stride: 2, pad: 'valid' }, // (7−3)/2 even, (9−3)/2 even
  { x: [2, 8, 10, 3], w: [3, 3, 3, 5], stride: 2, pad: 'valid' }, // last row/col unused: x is cropped
  { x: [2, 8, 10, 1], w: [5, 5, 1, 3], stride: 2, pad: 'same' },
  { x: [1, 9, 7, 4], w: [5, 5, 4, 2], stride: 2, pad: 'valid' },
  { x: [2, 7, 9, 2], w: [3, 3, 2, 3], stride: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { x: [2, 9, 8, 2], w: [3, 3, 2, 3], stride: 2, pad: 1 },
  { x: [2, 7, 7, 2], w: [1, 1, 2, 3], stride: 2, pad: 'valid' }, // dx would need negative padding: stock fallback
  { x: [4, 14, 14, 16], w: [5, 5, 16, 32], stride: 1, pad: 'same' }, // the MNIST CNN's second conv
];

for (const [i, c] of CONV_CASES.entries()) {
  test(`conv2d gradients on wasm match cpu: x ${c.x}, w ${c.w}, stride ${c.stride}, pad ${JSON.stringify(c.pad)}`, async () => {
    const grads = convGrads(c.x, c.w, c.stride, c.pad, 100 + i * 10);
    const [cpuDx, cpuDw] = await on('cpu', grads);
    const [wasmDx, wasmDw] = await on('wasm', grads);
    assert.ok(maxRelDiff(wasmDx, cpuDx) < 1e-3, `dx differs by ${maxRelDiff(wasmDx, cpuDx)}`);
    assert.ok(maxRelDiff(wasmDw, cpuDw) < 1e-3, `dW differs by ${maxRelDiff(wasmDw, cpuDw)}`);
  });
}

const POOL_CASES: { x: Shape4; size: number; stride: number; pad: 'same' | 'valid'; relu?: boolean }[] = [
  { x: [2, 8, 8, 3], size: 2, stride: 2, pad: 'valid' },
  { x: [2, 7, 9, 3], size: 2, stride: 2, pad: 'same' },
  { x: [1, 9, 7, 4], size: 3, stride: 2, pad: 'same' },
  { x: [2, 7, 9, 2], size: 3, stride: 1, pad: 'valid' }, // overlapping windows
  { x: [2, 8, 8, 16], size: 2, stride: 2, pad: 'valid', relu: true }, // ties at 0 resolve like cpu
];

for (const [i, c] of POOL_CASES.entries()) {
  test(`maxPool gradient on wasm matches cpu: x ${c.x}, pool ${c.size}, stride ${c.stride}, ${c.pad}${c.relu ? ', after relu' : ''}`, async () => {
    const xv = seeded(sizeOf(c.x), 500 + i);
    const grad = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(xv, c.x);
        const pool = (a: tf.Tensor) => tf.maxPool((c.relu ? tf.relu(a) : a) as tf.Tensor4D, c.size, c.stride, c.pad);
        const r = tf.tensor(seeded(pool(x).size, 600 + i), pool(x).shape);
        return [tf.grad((a: tf.Tensor) => tf.sum(tf.mul(pool(a), r)))(x)];
      });
    const [cpuDx] = await on('cpu', grad);
    const [wasmDx] = await on('wasm', grad);
    assert.ok(maxRelDiff(wasmDx, cpuDx) < 1e-6, `dx differs by ${maxRelDiff(wasmDx, cpuDx)}`);
  });
}

test('maxPool gradient goes to the maximum when every value in the window is negative', async () => {
  // The stock wasm kernel sends it to element 0 instead.
  await tf.setBackend('wasm');
  const dx = tf.tidy(() => {
    const x = tf.tensor4d([-1, -2, -3, -4, -5, -0.5, -7, -8], [1, 2, 4, 1]);
    return tf.grad((a: tf.Tensor) => tf.sum(tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid')))(x);
  });
  assert.deepEqual(Array.from(dx.dataSync()), [0, 0, 1, 0, 0, 1, 0, 0]);
  dx.dispose();
});

const MATMUL_CASES: { a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [
  { a: [7, 5], b: [5, 3], ta: false, tb: false },
  { a: [5, 7], b: [5, 3], ta: true, tb: false }, // a dense layer's dW = xᵀ·dy
  { a: [7, 5], b: [3, 5], ta: false, tb: true }, // a dense layer's dx = dy·Wᵀ
  { a: [5, 7], b: [3, 5], ta: true, tb: true },
  { a: [1, 5, 7], b: [1, 3, 5], ta: true, tb: true }, // rank 3 with a batch of one keeps its rank
  { a: [2, 5, 7], b: [2, 5, 3], ta: true, tb: false }, // batched: the stock kernel
];

/** Values and shape of f's single output on one backend. */
async function one(backend: 'cpu' | 'wasm', f: () => tf.Tensor): Promise<{ values: Float32Array; shape: number[] }> {
  await tf.setBackend(backend);
  const out = f();
  const result = { values: out.dataSync() as Float32Array, shape: out.shape };
  out.dispose();
  return result;
}

for (const [i, c] of MATMUL_CASES.entries()) {
  test(`matMul on wasm matches cpu: a ${c.a}${c.ta ? 'ᵀ' : ''} · b ${c.b}${c.tb ? 'ᵀ' : ''}`, async () => {
    const f = () => tf.tidy(() => tf.matMul(tf.tensor(seeded(sizeOf(c.a), 700 + i), c.a), tf.tensor(seeded(sizeOf(c.b), 710 + i), c.b), c.ta, c.tb));
    const cpu = await one('cpu', f);
    const wasm = await one('wasm', f);
    assert.deepEqual(wasm.shape, cpu.shape);
    assert.ok(maxRelDiff(wasm.values, cpu.values) < 1e-5, `differs by ${maxRelDiff(wasm.values, cpu.values)}`);
  });
}

const SUM_CASES: { x: number[]; axis: number[]; keepDims?: boolean }[] = [
  { x: [4, 5, 6, 16], axis: [0, 1, 2] }, // a conv bias gradient
  { x: [4, 5, 6, 13], axis: [0, 1, 2], keepDims: true }, // channels not a multiple of 8
  { x: [64, 10], axis: [0] }, // a dense bias gradient
  { x: [3, 4, 5], axis: [0, 1] },
  { x: [3, 4, 5], axis: [1, 2] }, // trailing axes: the stock kernel
  { x: [3, 4, 5], axis: [0, 2] }, // not leading: the stock kernel
];

for (const [i, c] of SUM_CASES.entries()) {
  test(`sum on wasm matches cpu: x ${c.x} over axes ${c.axis}${c.keepDims ? ', keepDims' : ''}`, async () => {
    const f = () => tf.tidy(() => tf.sum(tf.tensor(seeded(sizeOf(c.x), 800 + i), c.x), c.axis, c.keepDims));
    const cpu = await one('cpu', f);
    const wasm = await one('wasm', f);
    assert.deepEqual(wasm.shape, cpu.shape);
    assert.ok(maxRelDiff(wasm.values, cpu.values) < 1e-5, `differs by ${maxRelDiff(wasm.values, cpu.values)}`);
  });
}

test('a bias gradient summed over 100k rows keeps float32 precision', async () => {
  await tf.setBackend('wasm');
  const ones = tf.ones([100_000, 8]);
  const plus = tf.fill([100_000, 8], 1e-4);
  const s = tf.tidy(() => tf.sum(tf.add(ones, plus), [0]));
  assert.ok(Math.abs(s.dataSync()[3] - 100_010) < 1e-2, `sum ${s.dataSync()[3]}`);
  tf.dispose([ones, plus, s]);
});

test('identity on wasm shares the data instead of copying it, and frees it with the last reference', async () => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as BackendWasm;
  const x = tf.tensor([1, 2, 3]);
  const before = backend.numDataIds();
  const y = tf.engine().runKernel('Identity', { x }) as tf.Tensor;
  assert.equal(backend.numDataIds(), before);
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3]);
  y.dispose();
  assert.equal(backend.numDataIds(), before - 1);
});

test('one training step of a small CNN gives the same weights on wasm as on cpu', async () => {
  const x = seeded(8 * 12 * 12, 7);
  const y = Float32Array.from({ length: 8 * 3 }, (_, i) => (i % 3 === Math.floor(i / 3) % 3 ? 1 : 0));
  const step = () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [12, 12, 1], filters: 4, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }),
      ],
    });
    const optimizer = tf.train.sgd(0.5);
    const xs = tf.tensor4d(x, [8, 12, 12, 1]);
    const ys = tf.tensor2d(y, [8, 3]);
    optimizer.minimize(() => tf.losses.softmaxCrossEntropy(ys, model.apply(xs) as tf.Tensor));
    const weights = model.getWeights().map((w) => w.clone());
    tf.dispose([xs, ys]);
    optimizer.dispose();
    model.dispose();
    return weights;
  };
  const cpu = await on('cpu', step);
  const wasm = await on('wasm', step);
  for (let i = 0; i < cpu.length; i++) assert.ok(maxRelDiff(wasm[i], cpu[i]) < 1e-3, `weight ${i} differs by ${maxRelDiff(wasm[i], cpu[i])}`);
});

test('repeated conv2d / maxPool gradients leak neither tensors nor wasm memory', async () => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as BackendWasm;
  const heapBytes = () => (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.length;
  const xs = tf.tensor4d(seeded(16 * 14 * 14 * 8, 1), [16, 14, 14, 8]);
  const ws = tf.tensor4d(seeded(5 * 5 * 8 * 16, 2), [5, 5, 8, 16]);
  const ws2 = tf.tensor4d(seeded(3 * 3 * 8 * 4, 3), [3, 3, 8, 4]);
  const loss = (x: tf.Tensor, w: tf.Tensor, w2: tf.Tensor) =>
    tf.add(
      tf.sum(tf.maxPool(tf.relu(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same')), 2, 2, 'valid')),
      tf.sum(tf.conv2d(x as tf.Tensor4D, w2 as tf.Tensor4D, 2, 'valid')), // the cropping path
    );
  const grads = tf.grads(loss);
  const once = () => tf.dispose(grads([xs, ws, ws2]));

  // IS_TEST makes the engine check, after every kernel, that the backend holds no data beyond the outputs.
  tf.env().set('IS_TEST', true);
  try {
    for (let i = 0; i < 3; i++) once(); // warm-up: the wasm heap grows to its working size
    const before = { ...tf.memory(), dataIds: backend.numDataIds(), heap: heapBytes() };
    for (let i = 0; i < 20; i++) once();
    const after = { ...tf.memory(), dataIds: backend.numDataIds(), heap: heapBytes() };
    assert.equal(after.numTensors, before.numTensors);
    assert.equal(after.numBytes, before.numBytes);
    assert.equal(after.dataIds, before.dataIds);
    assert.equal(after.heap, before.heap, 'the wasm heap kept growing (XNNPACK operators or buffers not freed)');
  } finally {
    tf.env().set('IS_TEST', false);
    tf.dispose([xs, ws, ws2]);
  }
});

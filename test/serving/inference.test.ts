import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadMnist } from '../../src/data/mnist.ts';
import { OnnxModel } from '../../src/ml/onnx/onnx-session.ts';
import { LocalEngine, loadServableModel } from '../../src/serving/inference.ts';
import { untrainedModelFiles } from '../helpers/serving.ts';

const sums = (probabilities: Float32Array, count: number) =>
  Array.from({ length: count }, (_, i) => probabilities.subarray(i * 10, (i + 1) * 10).reduce((a, b) => a + b, 0));

test('loading (with its warm-up inference) and running a TF.js model leave no tensor behind', async () => {
  const files = await untrainedModelFiles(3, { onnx: false });
  const weights = files.modelJson.weightsManifest[0].weights.length;
  const before = tf.memory().numTensors;
  const model = await loadServableModel(1, files);
  assert.equal(model.engine, 'tfjs', 'a version without model.onnx runs on TF.js');
  assert.equal(tf.memory().numTensors, before + weights, 'only the weights stay after the warm-up');
  const pixels = Uint8Array.from((await loadMnist('test')).images.subarray(0, 8 * 784));
  for (const count of [1, 8]) {
    const probabilities = await model.run(pixels.subarray(0, count * 784), count);
    assert.equal(probabilities.length, count * 10);
    for (const sum of sums(probabilities, count)) assert.ok(Math.abs(sum - 1) < 1e-4, `probabilities sum to ${sum}`);
  }
  assert.equal(tf.memory().numTensors, before + weights, 'predictions leave nothing behind');
  model.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('a version with model.onnx runs on ONNX Runtime under auto, on TF.js under tfjs, and both give the same probabilities', async () => {
  const files = await untrainedModelFiles(4);
  const pixels = Uint8Array.from((await loadMnist('test')).images.subarray(0, 16 * 784));
  const onnx = await loadServableModel(1, files, 'auto');
  const tfjs = await loadServableModel(1, files, 'tfjs');
  try {
    assert.equal(onnx.engine, 'onnxruntime');
    assert.equal(tfjs.engine, 'tfjs');
    const [a, b] = [await onnx.run(pixels, 16), await tfjs.run(pixels, 16)];
    assert.equal(a.length, 160);
    const worst = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    assert.ok(worst <= 1e-5, `engines differ by ${worst}`);
    await assert.rejects(onnx.run(pixels.subarray(0, 100), 1), RangeError, 'a short batch is refused, not padded');
  } finally {
    onnx.dispose();
    tfjs.dispose();
  }
});

test('a model.onnx that ONNX Runtime cannot load falls back to TF.js and says why; the engine shows on the handle', async () => {
  const files = await untrainedModelFiles(5);
  const model = await loadServableModel(2, { ...files, onnx: Uint8Array.of(1, 2, 3, 4) });
  assert.equal(model.engine, 'tfjs');
  assert.match(model.fallback ?? '', /model\.onnx does not run here/);
  model.dispose();

  const engine = new LocalEngine();
  const [withOnnx, without] = [await engine.load(1, files), await engine.load(2, await untrainedModelFiles(5, { onnx: false }))];
  assert.deepEqual([withOnnx.engine, without.engine], ['onnxruntime', 'tfjs']);
  await engine.close();
});

test('a version on ONNX Runtime adds no thread of its own: one intra-op thread, the caller\'s (the inference threads are the parallelism)', { skip: !existsSync('/proc/self/task') && 'needs /proc' }, async () => {
  const files = await untrainedModelFiles(7);
  const threads = () => readdirSync('/proc/self/task').length;
  const first = await loadServableModel(1, files); // loads the runtime itself once
  await readFile('/proc/self/status'); // and Node's own pool of threads is started, whoever ran first
  const before = threads();
  const more = [await loadServableModel(2, files), await loadServableModel(3, files)];
  for (const model of more) await model.run(new Uint8Array(784 * 32), 32);
  assert.equal(threads(), before, 'no thread pool per session');
  // The check can tell: an evaluation session with two intra-op threads starts one.
  const evaluation = await OnnxModel.load(files.onnx!, { threads: 2 });
  await evaluation.runFloats(new Float32Array(784 * 32), 32);
  assert.equal(threads(), before + 1);
  for (const model of [first, ...more]) model.dispose();
  await evaluation.dispose();
});

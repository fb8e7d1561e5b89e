import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadMnist } from '../../src/data/mnist.ts';
import { createModel } from '../../src/ml/architectures.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { replicationObstacle } from '../../src/ml/data-parallel.ts';
import { freezeLayers } from '../../src/ml/freeze.ts';
import { train, TrainingCancelledError } from '../../src/ml/train.ts';

before(() => initBackend('wasm'));

async function subset(count: number) {
  const all = await loadMnist('train');
  return { images: all.images.subarray(0, count * 784), labels: all.labels.subarray(0, count), count };
}

const weightsOf = (model: tfl.LayersModel) => model.getWeights().map((w) => Array.from(w.dataSync()));

function maxAbsDiff(a: number[][], b: number[][]): number {
  let diff = 0;
  a.forEach((w, i) => w.forEach((v, j) => (diff = Math.max(diff, Math.abs(v - b[i][j])))));
  return diff;
}

test('training on two threads gives the same losses and weights as on one, for the same seed', async () => {
  const data = await subset(640);
  const run = async (replicas: number) => {
    const model = createModel('cnn', { learningRate: 0.002, seed: 11 });
    const losses: number[] = [];
    const history = await train(model, data, { epochs: 2, batchSize: 64, validationSplit: 0.2, seed: 11, replicas }, { onBatchEnd: (p) => losses.push(p.loss) });
    const result = { history, losses, weights: weightsOf(model) };
    model.dispose();
    return result;
  };
  const one = await run(1);
  const two = await run(2);
  assert.equal(two.losses.length, one.losses.length);
  two.losses.forEach((l, i) => assert.ok(Math.abs(l - one.losses[i]) < 1e-4, `batch ${i + 1}: loss ${l} vs ${one.losses[i]}`));
  assert.ok(Math.abs(two.history[1].valAccuracy! - one.history[1].valAccuracy!) < 0.01);
  // Float sums in another order: the same weights to well within one Adam step (lr 0.002).
  assert.ok(maxAbsDiff(two.weights, one.weights) < 1e-4, `weights differ by ${maxAbsDiff(two.weights, one.weights)}`);
});

test('the stn trains on two threads as on one: the sampler and its custom gradient replicate exactly', async () => {
  const data = await subset(256);
  const run = async (replicas: number) => {
    const model = createModel('stn', { learningRate: 0.005, seed: 15 });
    const losses: number[] = [];
    await train(model, data, { epochs: 1, batchSize: 64, validationSplit: 0, seed: 15, replicas }, { onBatchEnd: (p) => losses.push(p.loss) });
    const result = { losses, weights: weightsOf(model) };
    model.dispose();
    return result;
  };
  const one = await run(1);
  const two = await run(2);
  two.losses.forEach((l, i) => assert.ok(Math.abs(l - one.losses[i]) < 1e-4, `batch ${i + 1}: loss ${l} vs ${one.losses[i]}`));
  assert.ok(maxAbsDiff(two.weights, one.weights) < 1e-4, `weights differ by ${maxAbsDiff(two.weights, one.weights)}`);
});

test('the resnet trains on two threads, each normalising by its own share of the batch; only this thread keeps moving statistics', async () => {
  const data = await subset(512);
  const model = createModel('resnet', { learningRate: 0.005, seed: 16 });
  assert.equal(replicationObstacle(model), null);
  const statistics = () => model.weights.filter((w) => /moving_mean/.test(w.originalName)).map((w) => Array.from(w.read().dataSync()));
  const before = statistics();
  const losses: number[] = [];
  await train(model, data, { epochs: 2, batchSize: 128, validationSplit: 0, seed: 16, replicas: 2 }, { onBatchEnd: (p) => losses.push(p.loss) });
  assert.ok(losses.every(Number.isFinite));
  assert.ok(losses.at(-1)! < losses[0], `loss ${losses[0]} → ${losses.at(-1)}`);
  assert.ok(statistics().every((m, i) => maxAbsDiff([m], [before[i]]) > 0), 'the moving means followed the batches this thread saw');
  model.dispose();
});

test('an uneven last batch is shared by weight of each part', async () => {
  // 100 examples in batches of 64: the second batch has 36, so the parts are 18 + 18, then 32 + 32.
  const data = await subset(100);
  const run = async (replicas: number) => {
    const model = createModel('lenet5', { learningRate: 0.001, seed: 12 });
    const history = await train(model, data, { epochs: 1, batchSize: 64, validationSplit: 0, seed: 12, replicas });
    const result = { loss: history[0].loss, weights: weightsOf(model) };
    model.dispose();
    return result;
  };
  const one = await run(1);
  const two = await run(2);
  assert.ok(Math.abs(two.loss - one.loss) < 1e-5, `loss ${two.loss} vs ${one.loss}`);
  assert.ok(maxAbsDiff(two.weights, one.weights) < 1e-5);
});

test('frozen layers stay frozen when the replicas compute the gradients', async () => {
  const data = await subset(256);
  const model = createModel('cnn', { learningRate: 0.001, seed: 13 });
  freezeLayers(model, 'features');
  model.compile({ optimizer: tf.train.adam(0.001), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const layerWeights = (name: string) => model.getLayer(name).getWeights().map((w) => Array.from(w.dataSync()));
  const before = ['conv1', 'conv2', 'logits'].map(layerWeights);
  await train(model, data, { epochs: 1, batchSize: 64, validationSplit: 0, seed: 13, replicas: 2 });
  const after = ['conv1', 'conv2', 'logits'].map(layerWeights);
  assert.equal(maxAbsDiff(after[0], before[0]), 0, 'conv1 changed');
  assert.equal(maxAbsDiff(after[1], before[1]), 0, 'conv2 changed');
  assert.ok(maxAbsDiff(after[2], before[2]) > 0, 'the dense layer did not change');
  model.dispose();
});

test('shouldStop ends data-parallel training after the current batch, and leaks no tensors', async () => {
  const data = await subset(640);
  const model = createModel('cnn', { learningRate: 0.001, seed: 14 });
  await train(model, await subset(64), { epochs: 1, batchSize: 64, validationSplit: 0, seed: 14 }); // optimizer state now exists
  const tensors = tf.memory().numTensors;
  let seen = 0;
  await assert.rejects(
    train(model, data, { epochs: 3, batchSize: 64, validationSplit: 0, seed: 14, replicas: 2 }, { onBatchEnd: () => seen++, shouldStop: () => seen >= 3 }),
    TrainingCancelledError,
  );
  assert.equal(seen, 3);
  assert.equal(tf.memory().numTensors, tensors);
  model.dispose();
});

test('models whose forward pass a replica could not reproduce are trained on one thread', () => {
  const cnn = createModel('cnn', { learningRate: 0.001 });
  assert.equal(replicationObstacle(cnn), null);
  const dropout = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 3 }), tfl.layers.dropout({ rate: 0.5 }), tfl.layers.dense({ units: 2, activation: 'softmax' })] });
  dropout.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  assert.match(replicationObstacle(dropout) ?? '', /Dropout/);
  const mse = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 2 })] });
  mse.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
  assert.match(replicationObstacle(mse) ?? '', /loss/);
  tf.dispose([cnn, dropout, mse].flatMap((m) => m.weights.map((w) => w.read())));
});

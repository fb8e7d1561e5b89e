import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadMnist } from '../../src/data/mnist.ts';
import { createModel } from '../../src/ml/architectures.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { evaluate } from '../../src/ml/evaluate.ts';
import { makeSchedule } from '../../src/ml/schedules.ts';
import { splitIndices, train, TrainingCancelledError } from '../../src/ml/train.ts';
import type { BatchProgress } from '../../src/schemas/jobs.ts';

before(() => initBackend('wasm'));

async function subset(count: number) {
  const all = await loadMnist('train');
  return { images: all.images.subarray(0, count * 784), labels: all.labels.subarray(0, count), count };
}

test('the validation split is a seeded, disjoint partition of every example', () => {
  const a = splitIndices(100, 0.2, 3);
  assert.equal(a.validation.length, 20);
  assert.equal(a.train.length, 80);
  assert.deepEqual(new Set([...a.train, ...a.validation]).size, 100);
  assert.deepEqual([...splitIndices(100, 0.2, 3).validation], [...a.validation]);
  assert.notDeepEqual([...splitIndices(100, 0.2, 4).validation], [...a.validation]);
});

test('training reports every batch and epoch, lowers the loss, and learns', async () => {
  const data = await subset(1500);
  const model = createModel('cnn', { learningRate: 0.002, seed: 1 });
  const batches: BatchProgress[] = [];
  const epochs: number[] = [];
  const history = await train(model, data, { epochs: 2, batchSize: 50, validationSplit: 0.2, seed: 1 }, {
    onBatchEnd: (p) => batches.push(p),
    onEpochEnd: (s) => epochs.push(s.epoch),
  });
  assert.deepEqual(epochs, [1, 2]);
  assert.equal(batches.length, 2 * 24); // 1200 training examples / 50
  assert.deepEqual(batches.at(-1), { ...batches.at(-1)!, epoch: 2, epochs: 2, batch: 24, batches: 24 });
  assert.equal(history.length, 2);
  assert.ok(history[1].loss < history[0].loss, `loss ${history[0].loss} → ${history[1].loss}`);
  assert.ok(history[1].valAccuracy! > 0.75, `validation accuracy ${history[1].valAccuracy}`);
  const test = evaluate(model, { ...(await loadMnist('test')), count: 1000 });
  assert.ok(test.accuracy > 0.75, `test accuracy ${test.accuracy}`);
  model.dispose();
});

test('the same seed trains to the same weights', async () => {
  const data = await subset(256);
  const run = async () => {
    const model = createModel('cnn', { learningRate: 0.001, seed: 9 });
    const history = await train(model, data, { epochs: 1, batchSize: 64, validationSplit: 0, seed: 9 });
    const w = Array.from(model.layers[2].getWeights()[0].dataSync().slice(0, 50));
    model.dispose();
    return { loss: history[0].loss, w };
  };
  assert.deepEqual(await run(), await run());
});

test('shouldStop ends training after the current batch', async () => {
  const data = await subset(640);
  const model = createModel('cnn', { learningRate: 0.001, seed: 2 });
  let seen = 0;
  await assert.rejects(
    train(model, data, { epochs: 3, batchSize: 64, validationSplit: 0, seed: 2 }, { onBatchEnd: () => seen++, shouldStop: () => seen >= 3 }),
    TrainingCancelledError,
  );
  assert.equal(seen, 3);
  model.dispose();
});

test('training leaks no tensors', async () => {
  const data = await subset(256);
  const model = createModel('lenet5', { learningRate: 0.001, seed: 4 });
  await train(model, data, { epochs: 1, batchSize: 64, validationSplit: 0, seed: 4 }); // optimizer state now exists
  const before = tf.memory().numTensors;
  await train(model, data, { epochs: 2, batchSize: 64, validationSplit: 0.25, seed: 4 });
  evaluate(model, data);
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

test('evaluation counts every example once in the confusion matrix', async () => {
  const data = await subset(300);
  const model = createModel('cnn', { learningRate: 0.001, seed: 5 });
  const result = evaluate(model, data, undefined, 128);
  assert.equal(result.count, 300);
  assert.equal(result.confusionMatrix.flat().reduce((a, b) => a + b, 0), 300);
  const rows = result.confusionMatrix.map((r) => r.reduce((a, b) => a + b, 0));
  const labelCounts = new Array(10).fill(0);
  for (const l of data.labels) labelCounts[l]++;
  assert.deepEqual(rows, labelCounts);
  assert.ok(result.loss > 0);
  model.dispose();
});

test('a schedule sets the rate before every step, the one-cycle rising to its peak and falling to its end', async () => {
  const data = await subset(400);
  const model = createModel('cnn', { learningRate: 1, seed: 6 });
  const seen: number[] = [];
  const rate = () => (model.optimizer as unknown as { learningRate: number }).learningRate;
  await train(model, data, { epochs: 2, batchSize: 40, validationSplit: 0, seed: 6, schedule: { name: 'one-cycle', rate: 0.01 } }, { onBatchEnd: () => seen.push(rate()) });
  const at = makeSchedule({ name: 'one-cycle', rate: 0.01 }, 2, 10);
  assert.equal(seen.length, 20);
  assert.deepEqual(seen, seen.map((_, step) => at(step)));
  assert.ok(Math.abs(Math.max(...seen) - 0.01) < 1e-12, 'the peak is learningRate');
  assert.ok(seen[0] < seen[1] && seen.at(-2)! > seen.at(-1)!);
  model.dispose();
});

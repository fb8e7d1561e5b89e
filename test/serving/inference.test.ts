import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadMnist } from '../../src/data/mnist.ts';
import { loadServableModel, runModel } from '../../src/serving/inference.ts';
import { untrainedModelFiles } from '../helpers/serving.ts';

test('loading (with its warm-up inference) and running a model leave no tensor behind', async () => {
  const files = await untrainedModelFiles(3);
  const before = tf.memory().numTensors;
  const model = await loadServableModel(1, files);
  const weights = model.weights.length;
  assert.equal(tf.memory().numTensors, before + weights, 'only the weights stay after the warm-up');
  const pixels = Uint8Array.from((await loadMnist('test')).images.subarray(0, 8 * 784));
  for (const count of [1, 8]) {
    const probabilities = runModel(model, pixels.subarray(0, count * 784), count);
    assert.equal(probabilities.length, count * 10);
    for (let i = 0; i < count; i++) {
      const sum = probabilities.subarray(i * 10, (i + 1) * 10).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-4, `image ${i}'s probabilities sum to ${sum}`);
    }
  }
  assert.equal(tf.memory().numTensors, before + weights, 'predictions leave nothing behind');
  model.dispose();
  assert.equal(tf.memory().numTensors, before);
});

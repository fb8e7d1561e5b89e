import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { createCnn, createLenet5, createModel } from '../../src/ml/architectures.ts';
import { initBackend } from '../../src/ml/backend.ts';

before(() => initBackend('wasm'));

const layerSummary = (model: ReturnType<typeof createCnn>) =>
  model.layers.map((l) => [l.getClassName(), JSON.stringify(l.outputShape), l.countParams()]);

test('cnn is exactly: 5×5×16 same conv + ReLU, pool 2, 5×5×32 same conv + ReLU, pool 2, flatten, dense 10', () => {
  const model = createCnn();
  assert.deepEqual(layerSummary(model), [
    ['Conv2D', '[null,28,28,16]', 5 * 5 * 1 * 16 + 16],
    ['MaxPooling2D', '[null,14,14,16]', 0],
    ['Conv2D', '[null,14,14,32]', 5 * 5 * 16 * 32 + 32],
    ['MaxPooling2D', '[null,7,7,32]', 0],
    ['Flatten', '[null,1568]', 0],
    ['Dense', '[null,10]', 1568 * 10 + 10],
  ]);
  const conv = model.layers[0].getConfig();
  assert.equal(conv.activation, 'relu');
  assert.deepEqual(conv.kernelSize, [5, 5]);
  assert.equal(model.layers[5].getConfig().activation, 'softmax');
  model.dispose();
});

test('lenet5 is 6@28×28 (padded), pool, 16@10×10, pool, 120, 84, 10', () => {
  const model = createLenet5();
  assert.deepEqual(layerSummary(model).map(([name, shape]) => [name, shape]), [
    ['Conv2D', '[null,28,28,6]'],
    ['MaxPooling2D', '[null,14,14,6]'],
    ['Conv2D', '[null,10,10,16]'],
    ['MaxPooling2D', '[null,5,5,16]'],
    ['Flatten', '[null,400]'],
    ['Dense', '[null,120]'],
    ['Dense', '[null,84]'],
    ['Dense', '[null,10]'],
  ]);
  model.dispose();
});

test('a compiled model trains with Adam at the given learning rate on cross-entropy', () => {
  const model = createModel('cnn', { learningRate: 0.003 });
  const optimizer = model.optimizer.getConfig();
  assert.equal(model.optimizer.getClassName(), 'Adam');
  assert.equal(optimizer.learningRate, 0.003);
  assert.equal(model.loss, 'categoricalCrossentropy');
  model.dispose();
});

test('the same seed gives the same initial weights; another seed does not', () => {
  const weights = (seed: number) => {
    const m = createCnn(seed);
    const w = Array.from(m.layers[0].getWeights()[0].dataSync());
    m.dispose();
    return w;
  };
  assert.deepEqual(weights(5), weights(5));
  assert.notDeepEqual(weights(5), weights(6));
});

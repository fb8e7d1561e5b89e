import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { createCnn, createLenet5, createModel, createResnet, createStn } from '../../src/ml/architectures.ts';
import { loadModel } from '../../src/ml/load-model.ts';
import { serializeModel } from '../../src/ml/serialize.ts';
import { filesToArtifacts } from '../../src/ml/model-files.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { ARCHITECTURES } from '../../src/schemas/jobs.ts';

before(() => initBackend('wasm'));

const layerSummary = (model: tfl.LayersModel) =>
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

test('a compiled model trains with Adam at the given learning rate and betas on cross-entropy', () => {
  const model = createModel('cnn', { learningRate: 0.003, beta1: 0.7, beta2: 0.9 });
  const optimizer = model.optimizer.getConfig();
  assert.equal(model.optimizer.getClassName(), 'Adam');
  assert.deepEqual([optimizer.learningRate, optimizer.beta1, optimizer.beta2], [0.003, 0.7, 0.9]);
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

test('stn: a localisation network predicts an affine matrix that starts as the identity, a sampler warps the digit, the cnn classifies it', () => {
  const model = createStn(1);
  const names = model.layers.map((l) => l.name);
  assert.ok(names.indexOf('loc_affine') < names.indexOf('transformer') && names.indexOf('transformer') < names.indexOf('conv1'));
  assert.deepEqual(model.getLayer('transformer').outputShape, [null, 28, 28, 1]);
  const [kernel, bias] = model.getLayer('loc_affine').getWeights();
  assert.ok(kernel.dataSync().every((v) => v === 0));
  assert.deepEqual(Array.from(bias.dataSync()), [1, 0, 0, 0, 1, 0]);
  // At the identity the sampler passes the image through: the classifier sees the digit as sent.
  const xs = tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 5);
  const warped = tfl.model({ inputs: model.inputs, outputs: model.getLayer('transformer').output as tfl.SymbolicTensor }).predict(xs) as tf.Tensor;
  assert.ok(tf.max(tf.abs(tf.sub(warped, xs))).dataSync()[0] < 1e-5);
  tf.dispose([xs, warped]);
  model.dispose();
});

test('resnet: a 5×5 stem and pool to 14×14, residual blocks with batch norm at 14×14 and 7×7, global pooling, dense 10', () => {
  const model = createResnet(1);
  const shapeOf = (name: string) => JSON.stringify(model.getLayer(name).outputShape);
  assert.equal(shapeOf('stem_pool'), '[null,14,14,32]');
  assert.equal(shapeOf('block1_add'), '[null,14,14,32]');
  assert.equal(shapeOf('block2_add'), '[null,7,7,64]');
  assert.equal(shapeOf('logits'), '[null,10]');
  assert.equal(model.layers.filter((l) => l.getClassName() === 'BatchNormalization').length, 5);
  assert.equal(model.layers.filter((l) => l.getClassName() === 'Add').length, 2);
  model.dispose();
});

for (const architecture of ARCHITECTURES) {
  test(`${architecture}: saved as TensorFlow.js layers files, loaded again, predicts the same`, async () => {
    const model = createModel(architecture, { learningRate: 0.001, seed: 2 });
    const files = await serializeModel(model);
    const loaded = await loadModel(filesToArtifacts(files));
    const xs = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 3);
    const [a, b] = [model.predict(xs), loaded.predict(xs)] as tf.Tensor[];
    assert.deepEqual(Array.from(b.dataSync()), Array.from(a.dataSync()));
    tf.dispose([xs, a, b]);
    model.dispose();
    loaded.dispose();
  });
}

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { loadMnist } from '../../src/data/mnist.ts';
import { compileForTraining, createModel } from '../../src/ml/architectures.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { freezeLayers, headLayers } from '../../src/ml/freeze.ts';
import { loadModel } from '../../src/ml/load-model.ts';
import { serializeModel } from '../../src/ml/serialize.ts';
import { filesToArtifacts } from '../../src/ml/model-files.ts';
import { train } from '../../src/ml/train.ts';

before(() => initBackend('wasm'));

async function subset(count: number) {
  const all = await loadMnist('train');
  return { images: all.images.subarray(0, count * 784), labels: all.labels.subarray(0, count), count };
}

const values = (model: LayersModel, names: (name: string) => boolean) =>
  model.weights.filter((w) => names(w.originalName)).map((w) => ({ name: w.originalName, data: Array.from(w.read().dataSync()) }));

test('the dense head is the run of dense layers that ends at the output, for every architecture', () => {
  const heads = Object.fromEntries((['cnn', 'lenet5', 'stn', 'resnet'] as const).map((a) => {
    const model = createModel(a, { learningRate: 0.001 });
    const head = [...headLayers(model)].sort();
    model.dispose();
    return [a, head];
  }));
  assert.deepEqual(heads, { cnn: ['logits'], lenet5: ['c5', 'f6', 'output'], stn: ['logits'], resnet: ['logits'] });
});

test('the head is found in a model loaded from its files too', async () => {
  const created = createModel('cnn', { learningRate: 0.001 });
  const loaded = await loadModel(filesToArtifacts(await serializeModel(created)));
  assert.deepEqual([...headLayers(loaded)], ['logits']);
  created.dispose();
  loaded.dispose();
});

test('freeze "features" on the stn freezes the localisation network and the convolutions, not the head', () => {
  const model = createModel('stn', { learningRate: 0.001 });
  freezeLayers(model, 'features');
  const trainable = model.layers.filter((l) => l.trainable && l.countParams() > 0).map((l) => l.name);
  assert.deepEqual(trainable, ['logits']);
  assert.ok(model.layers.some((l) => l.name === 'loc_affine' && !l.trainable));
  model.dispose();
});

test('a number freezes that many of the first layers; more layers than the model has is refused', () => {
  const model = createModel('lenet5', { learningRate: 0.001 });
  assert.equal(freezeLayers(model, 2), 2);
  assert.deepEqual(model.layers.map((l) => l.trainable), [false, false, true, true, true, true, true, true]);
  assert.throws(() => freezeLayers(model, 99), /only 8 layers/);
  assert.throws(() => freezeLayers(model, 8), /leaves nothing to train/);
  model.dispose();
});

test('frozen batch-norm layers keep their moving statistics while the head trains; trainable ones update theirs', async () => {
  const data = await subset(256);
  const isStatistic = (name: string) => /moving_(mean|variance)/.test(name);

  const frozen = createModel('resnet', { learningRate: 0.01, seed: 3 });
  freezeLayers(frozen, 'features');
  compileForTraining(frozen, { learningRate: 0.01 });
  const before = values(frozen, isStatistic);
  const headBefore = values(frozen, (n) => n.startsWith('logits'));
  await train(frozen, data, { epochs: 1, batchSize: 64, validationSplit: 0, seed: 3, replicas: 1 });
  assert.deepEqual(values(frozen, isStatistic), before, 'moving statistics of frozen layers changed');
  assert.notDeepEqual(values(frozen, (n) => n.startsWith('logits')), headBefore, 'the head did not train');
  frozen.dispose();

  const free = createModel('resnet', { learningRate: 0.01, seed: 3 });
  const freeBefore = values(free, isStatistic);
  await train(free, data, { epochs: 1, batchSize: 64, validationSplit: 0, seed: 3, replicas: 1 });
  const changed = values(free, isStatistic).filter((w, i) => JSON.stringify(w.data) !== JSON.stringify(freeBefore[i].data));
  assert.equal(changed.length, freeBefore.length, 'every trainable batch-norm layer updates its statistics');
  free.dispose();
});

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadLayersModel } from '@tensorflow/tfjs-layers';
import { loadMnist } from '../../src/data/mnist.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { evaluate } from '../../src/ml/evaluate.ts';
import { freezeLayers } from '../../src/ml/freeze.ts';
import { createCnn } from '../../src/ml/architectures.ts';
import { splitIndices } from '../../src/ml/train.ts';
import { DatasetStore } from '../../src/store/dataset-store.ts';
import { filesToArtifacts } from '../../src/ml/model-files.ts';
import { ModelStore } from '../../src/store/model-store.ts';
import { runFinetuneJob, type StorePaths } from '../../src/worker/finetune-job.ts';
import { finetuneJob } from '../helpers/job-data.ts';
import { writeFixtureVersion } from '../helpers/fixture-model.ts';

// Data the base model finds hard: MNIST test digits turned a quarter clockwise (not the ones it trained on).
let dir = '';
let paths: StorePaths;
let base = 0;
let datasetId = '';
let rotated: { images: Uint8Array; labels: Uint8Array; count: number };

before(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'finetune-'));
  paths = { modelsDir: join(dir, 'models'), datasetsDir: join(dir, 'datasets') };
  base = await writeFixtureVersion(new ModelStore(paths.modelsDir));
  const test = await loadMnist('test');
  const n = 1200;
  rotated = { images: new Uint8Array(n * 784), labels: new Uint8Array(n), count: n };
  for (let k = 0; k < n; k++) {
    const src = 5000 + k;
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) rotated.images[k * 784 + y * 28 + x] = test.images[src * 784 + (27 - x) * 28 + y];
    rotated.labels[k] = test.labels[src];
  }
  datasetId = (await new DatasetStore(paths.datasetsDir).create(rotated, { name: 'rotated', format: 'idx' })).id;
});
after(() => rm(dir, { recursive: true, force: true }));

// Given as corrections (what the worker reads from Redis for "dataset": "feedback"), so the promotion gate is measured too;
// an uploaded dataset takes the same path from the store (the e2e tests tune on one).
test('fine-tuning the head on hard corrections raises their held-out accuracy a lot, keeps MNIST (rehearsal), and passes the gate against the base', async () => {
  const store = new ModelStore(paths.modelsDir);
  const baseMeta = await store.readMetadata(base);
  const baseModel = await loadLayersModel(tf.io.fromMemory(filesToArtifacts(await store.readModelFiles(base))));
  const { validation } = splitIndices(rotated.count, 0.25, 2);
  const before = evaluate(baseModel, rotated, validation).accuracy;
  baseModel.dispose();

  const outcome = await runFinetuneJob(
    finetuneJob({ baseModel: base, dataset: 'feedback', freeze: 'features', epochs: 4, batchSize: 32, validationSplit: 0.25, rehearsal: 0.5, seed: 2 }),
    paths,
    {},
    undefined,
    { data: rotated, maxMnistDrop: 0.01 },
  );
  const heldOut = outcome.metrics.heldOut!;
  assert.equal(heldOut.baseAccuracy, before, "the base's accuracy on the same held-out corrections");
  const gate = outcome.promotion!;
  assert.deepEqual([gate.passed, gate.heldOutAccuracy, gate.baseHeldOutAccuracy, gate.baseTestAccuracy, gate.maxMnistDrop], [true, heldOut.accuracy, before, baseMeta.metrics.testAccuracy, 0.01]);
  assert.match(outcome.dataset.name, /^1200 corrections \+ 900 MNIST$/);
  assert.equal(heldOut.count, validation.length);
  assert.ok(before < 0.5, `the base model finds rotated digits hard (${before})`);
  assert.ok(heldOut.accuracy > before + 0.35, `held-out accuracy ${before} → ${heldOut.accuracy}`);
  assert.ok(outcome.metrics.testAccuracy > baseMeta.metrics.testAccuracy - 0.01, `MNIST ${baseMeta.metrics.testAccuracy} → ${outcome.metrics.testAccuracy}`);
  assert.deepEqual(outcome.lineage, { baseVersion: base, dataset: 'feedback' });
  assert.equal(outcome.history.length, 4);
  assert.ok(outcome.history.every((h) => h.valAccuracy !== undefined), 'per-epoch accuracy on the held-out split');
  assert.equal(outcome.dataset.trainCount, 900 + 900, 'as many MNIST examples as new ones at rehearsal 0.5');
});

test('with the features frozen only the dense head changes', async () => {
  const store = new ModelStore(paths.modelsDir);
  const outcome = await runFinetuneJob(
    finetuneJob({ baseModel: base, dataset: datasetId, freeze: 'features', epochs: 1, batchSize: 64, learningRate: 0.002, validationSplit: 0.5, rehearsal: 0, seed: 3 }),
    paths,
  );
  const load = (files: Parameters<typeof filesToArtifacts>[0]) => loadLayersModel(tf.io.fromMemory(filesToArtifacts(files)));
  const [before, after] = await Promise.all([load(await store.readModelFiles(base)), load(outcome.files)]);
  const weights = (m: typeof before, i: number) => Array.from(m.layers[i].getWeights()[0].dataSync());
  assert.deepEqual(weights(after, 0), weights(before, 0), 'conv1 frozen');
  assert.deepEqual(weights(after, 2), weights(before, 2), 'conv2 frozen');
  assert.notDeepEqual(weights(after, 5), weights(before, 5), 'dense head trained');
  before.dispose();
  after.dispose();
});

test('freeze specs: features, none, a count, and ones that leave nothing to train', () => {
  const model = createCnn(1);
  assert.equal(freezeLayers(model, 'features'), 5);
  assert.deepEqual(model.layers.map((l) => l.trainable), [false, false, false, false, false, true]);
  assert.equal(freezeLayers(model, 'none'), 0);
  assert.ok(model.layers.every((l) => l.trainable));
  assert.equal(freezeLayers(model, 2), 2);
  assert.throws(() => freezeLayers(model, 6), /nothing to train/);
  model.dispose();
});

import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadLayersModel } from '@tensorflow/tfjs-layers';
import { loadMnist, spreadIndices } from '../../src/data/mnist.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { evaluate } from '../../src/ml/evaluate.ts';
import { processEnv, testConfig, waitFor } from '../helpers/env.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { makeZip } from '../helpers/zip.ts';
import { freePort, startProcess, type Proc } from '../helpers/processes.ts';

// The whole path as a user takes it: HTTP → BullMQ → a real worker process → model store → serving.
/** FEEDBACK_FINETUNE_EVERY, and the fewest corrections a fine-tune takes. */
const CORRECTIONS = 20;
let base = '';
let modelsDir = '';
const procs: Proc[] = [];
let cleanup = async () => {};

before(async () => {
  const { config, cleanup: clean } = await testConfig();
  cleanup = clean;
  modelsDir = config.modelsDir;
  const port = await freePort();
  const env = processEnv(config, port, { MODEL_POLL_MS: '1000', FEEDBACK_FINETUNE_EVERY: String(CORRECTIONS) });
  procs.push(startProcess('src/worker.ts', env), startProcess('src/api.ts', env));
  base = `http://127.0.0.1:${port}`;
  await waitFor('the API to be ready', () => fetch(`${base}/readyz`).then((r) => r.ok, () => false), 60_000).catch((err) => {
    throw new Error(`${err.message}\n--- worker ---\n${procs[0].output()}\n--- api ---\n${procs[1].output()}`);
  });
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await cleanup();
});

const json = async (path: string, init?: RequestInit) => {
  const res = await fetch(`${base}${path}`, init);
  return { status: res.status, headers: res.headers, body: await res.json() };
};
const postJob = (params: object) => json('/v1/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });

async function waitForJob(id: string, states: string[], timeoutMs: number) {
  return waitFor(`job ${id} to be ${states.join('/')}`, async () => {
    const { body } = await json(`/v1/jobs/${id}`);
    return states.includes(body.state) ? body : undefined;
  }, timeoutMs).catch((err) => {
    throw new Error(`${err.message}\n--- worker ---\n${procs[0].output()}`);
  });
}

test('predict before any model: 503 with how to train one', async () => {
  const [d] = await mnistTestPngs(1);
  const res = await json('/v1/predict', { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(d.png) });
  assert.equal(res.status, 503);
  assert.match(res.body.message, /POST \/v1\/jobs/);
});

let trainedId = '';

test('a small train job runs in the worker and writes version 1 with its metadata', async () => {
  // The default recipe on 2,000 images: one-cycle Adam, the batch chosen by the data's size.
  const created = await postJob({ type: 'train', limit: 2000, epochs: 1, seed: 3 });
  assert.equal(created.status, 202);
  trainedId = created.body.id;
  assert.equal(created.headers.get('location'), `/v1/jobs/${trainedId}`);

  const done = await waitForJob(trainedId, ['succeeded', 'failed', 'cancelled'], 180_000);
  assert.equal(done.state, 'succeeded', done.error);
  assert.equal(done.modelVersion, 1);
  assert.equal(done.history.length, 1);
  assert.deepEqual({ epoch: done.progress.epoch, batch: done.progress.batch }, { epoch: 1, batch: done.progress.batches });
  assert.equal(done.progress.batches, Math.ceil(2000 / done.params.batchSize));
  assert.equal(done.params.batchSize, 32, 'the largest power of two that still gives enough steps');
  assert.ok(done.metrics.testAccuracy > 0.85, `test accuracy ${done.metrics.testAccuracy}`);
  assert.ok(Date.parse(done.startedAt) >= Date.parse(done.createdAt));
  assert.ok(Date.parse(done.finishedAt) >= Date.parse(done.startedAt));

  assert.deepEqual((await readdir(modelsDir)).filter((n) => !n.startsWith('.')), ['1']);
  assert.deepEqual((await readdir(join(modelsDir, '1'))).sort(), ['group1-shard1of1.bin', 'metadata.json', 'model.json', 'model.onnx']);
  const meta = (await json('/v1/models/1')).body;
  assert.equal(meta.onnx.status, 'exported');
  assert.deepEqual({ file: meta.onnx.file, opset: meta.onnx.opset, images: meta.onnx.parity.images }, { file: 'model.onnx', opset: 20, images: 2000 });
  assert.equal(meta.jobId, trainedId);
  assert.equal(meta.dataset.trainCount, 2000);
  assert.equal(meta.metrics.testAccuracy, done.metrics.testAccuracy);
  assert.ok(meta.durationMs > 0);
});

test('the reported test accuracy is what the saved model scores on the MNIST test images it names', async () => {
  await initBackend('wasm');
  const model = await loadLayersModel(`${base}/v1/models/1/model.json`);
  const meta = (await json('/v1/models/1')).body;
  // The tests' workers score on MNIST_TEST_LIMIT=2000: every fifth test image.
  assert.equal(meta.dataset.testCount, 2000);
  const test = await loadMnist('test');
  const recomputed = evaluate(model, test, spreadIndices(test.count, meta.dataset.testCount));
  model.dispose();
  // The reported figure is ONNX Runtime's (the engine that serves it); the engines may differ only on
  // images whose top two probabilities are within 1e-4 of each other.
  const allowed = meta.onnx.parity.ambiguousImages / meta.dataset.testCount + 1e-9;
  assert.ok(Math.abs(recomputed.accuracy - meta.metrics.testAccuracy) <= allowed, `${recomputed.accuracy} vs ${meta.metrics.testAccuracy}`);
  assert.ok(tf.memory().numTensors < 50);
});

test('the new version is served: real MNIST test digits sent as PNGs come back right', async () => {
  await waitFor('version 1 to be served', () => json('/readyz').then((r) => r.body.servedVersion === 1), 10_000);
  assert.deepEqual((await json('/v1/models/serving')).body.loaded, [{ version: 1, engine: 'onnxruntime' }]);
  const digits = await mnistTestPngs(100, 500);
  let correct = 0;
  for (let i = 0; i < digits.length; i += 25) {
    const form = new FormData();
    for (const d of digits.slice(i, i + 25)) form.append('images', new Blob([new Uint8Array(d.png)], { type: 'image/png' }), 'digit.png');
    const res = await json('/v1/predict', { method: 'POST', body: form });
    assert.equal(res.status, 200);
    assert.equal(res.body.modelVersion, 1);
    res.body.predictions.forEach((p: { digit: number }, k: number) => {
      if (p.digit === digits[i + k].label) correct++;
    });
  }
  assert.ok(correct >= 80, `${correct}/100 MNIST test digits right`);
});

test('a running job cancelled through the API stops, writes no model, and the worker goes on', async () => {
  const { body: job } = await postJob({ type: 'train', limit: 60000, epochs: 2, seed: 4 });
  await waitFor('the job to be training', async () => (await json(`/v1/jobs/${job.id}`)).body.progress?.batch >= 2, 120_000);
  const cancelled = await json(`/v1/jobs/${job.id}`, { method: 'DELETE' });
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
  assert.equal(cancelled.body.state, 'cancelled');
  assert.ok(cancelled.body.progress.batch < cancelled.body.progress.batches, 'stopped before the end of the epoch');

  const next = await postJob({ type: 'train', limit: 300, epochs: 1, seed: 5 });
  const done = await waitForJob(next.body.id, ['succeeded', 'failed'], 120_000);
  assert.equal(done.state, 'succeeded', done.error);
  assert.equal(done.modelVersion, 2, 'the cancelled job took no version number');
  assert.deepEqual((await readdir(modelsDir)).filter((n) => !n.startsWith('.')).sort(), ['1', '2']);
});

test('an uploaded ImageFolder ZIP fine-tunes version 1 into a new version with its lineage', async () => {
  const digits = await mnistTestPngs(300, 2000);
  const zip = makeZip(digits.map((d, i) => ({ name: `handwriting/${d.label}/${i}.png`, data: d.png })));
  const upload = await json('/v1/datasets', { method: 'POST', headers: { 'content-type': 'application/zip' }, body: new Uint8Array(zip) });
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  const { body: job } = await postJob({ type: 'finetune', baseModel: 1, dataset: upload.body.id, epochs: 2, seed: 6 });
  const done = await waitForJob(job.id, ['succeeded', 'failed'], 120_000);
  assert.equal(done.state, 'succeeded', done.error);
  const meta = (await json(`/v1/models/${done.modelVersion}`)).body;
  assert.deepEqual(meta.lineage, { baseVersion: 1, dataset: upload.body.id });
  assert.equal(meta.metrics.heldOut.count, 60);
  assert.ok(meta.metrics.testAccuracy > 0.8, `MNIST test ${meta.metrics.testAccuracy}`);
  const [d] = await mnistTestPngs(1, 9000);
  const res = await json(`/v1/predict?version=${done.modelVersion}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(d.png) });
  assert.equal(res.body.modelVersion, done.modelVersion);
});

test('users correct predictions by their ids; after FEEDBACK_FINETUNE_EVERY of them a fine-tune on the corrections runs, and its promotion gate decides whether it serves', async () => {
  const served = (await json('/readyz')).body.servedVersion;
  const digits = await mnistTestPngs(60, 3000); // one request: at most MAX_IMAGES_PER_REQUEST
  const form = new FormData();
  for (const d of digits) form.append('images', new Blob([new Uint8Array(d.png)], { type: 'image/png' }), 'digit.png');
  const { body: predicted } = await json('/v1/predict', { method: 'POST', body: form });
  assert.equal(predicted.modelVersion, served);
  // What users send back: every wrong answer, then enough right ones to reach the threshold.
  const wrongFirst = digits.map((d, i) => ({ ...d, prediction: predicted.predictions[i] })).sort((a, b) => Number(a.prediction.digit === a.label) - Number(b.prediction.digit === b.label));
  for (const d of wrongFirst.slice(0, CORRECTIONS)) {
    const res = await json('/v1/feedback', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ predictionId: d.prediction.predictionId, label: d.label }) });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
  const tune = await waitFor('a fine-tune on the corrections to be queued', async () => {
    const { body } = await json('/v1/jobs?limit=20');
    return body.items.find((j: { params: { dataset?: string } }) => j.params.dataset === 'feedback');
  }, 10_000);
  assert.deepEqual([tune.params.baseModel, tune.params.type], [served, 'finetune']);
  const done = await waitForJob(tune.id, ['succeeded', 'failed'], 120_000);
  assert.equal(done.state, 'succeeded', done.error);

  const meta = (await json(`/v1/models/${done.modelVersion}`)).body;
  assert.deepEqual(meta.lineage, { baseVersion: served, dataset: 'feedback' });
  const { heldOut, testAccuracy } = meta.metrics;
  assert.equal(heldOut.count, CORRECTIONS * 0.2, 'held out from the corrections');
  const gate = meta.promotion;
  assert.deepEqual([gate.heldOutAccuracy, gate.baseHeldOutAccuracy, gate.testAccuracy, gate.maxMnistDrop], [heldOut.accuracy, heldOut.baseAccuracy, testAccuracy, 0.005]);
  assert.equal(gate.passed, heldOut.accuracy > heldOut.baseAccuracy && gate.baseTestAccuracy - testAccuracy <= 0.005, gate.reason);
  // Serving follows the gate, and the list says why.
  await waitFor('the API to apply the gate', async () => (await json('/readyz')).body.servedVersion === (gate.passed ? done.modelVersion : served), 10_000);
  const listed = (await json('/v1/models')).body.items.find((m: { version: number }) => m.version === done.modelVersion);
  assert.equal(listed.servingReason, gate.passed ? `promoted: its promotion gate ${gate.reason}` : `not promoted: its promotion gate ${gate.reason}; pin it to serve it`);

  // No corrections since that version: a fine-tune on them is refused with the count.
  const none = await postJob({ type: 'finetune', baseModel: 'latest', dataset: 'feedback', since: done.modelVersion });
  assert.equal(none.status, 400);
  assert.match(none.body.message, new RegExp(`^dataset "feedback": 0 corrections since version ${done.modelVersion}; at least ${CORRECTIONS} are needed`));
});

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadMnist } from '../../src/data/mnist.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { loadModel } from '../../src/ml/load-model.ts';
import { ModelStore } from '../../src/store/model-store.ts';
import { filesToArtifacts } from '../../src/ml/model-files.ts';
import { processEnv, testConfig, waitFor } from '../helpers/env.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { freePort, startProcess, type Proc } from '../helpers/processes.ts';
import { makeZip } from '../helpers/zip.ts';
import { ARCHITECTURES } from '../../src/schemas/jobs.ts';

// Every architecture the way a user meets it: POST a train job → a worker writes the version → the
// API's inference thread serves it → a fine-tune job starts from it → its files load again here.
let base = '';
let modelsDir = '';
const procs: Proc[] = [];
let cleanup = async () => {};

before(async () => {
  const { config, cleanup: clean } = await testConfig();
  cleanup = clean;
  modelsDir = config.modelsDir;
  const port = await freePort();
  const env = processEnv(config, port, { MODEL_POLL_MS: '1000', WORKER_CONCURRENCY: '2' });
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
  return { status: res.status, body: await res.json() };
};
const postJob = (params: object) => json('/v1/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
const finished = (id: string) =>
  waitFor(`job ${id} to finish`, async () => {
    const { body } = await json(`/v1/jobs/${id}`);
    return ['succeeded', 'failed', 'cancelled'].includes(body.state) ? body : undefined;
  }, 240_000).catch((err) => {
    throw new Error(`${err.message}\n--- worker ---\n${procs[0].output()}`);
  });

test('every architecture trains, serves and loads again from its saved files; the stn and the resnet fine-tune', async () => {
  const digits = await mnistTestPngs(200, 3000);
  const zip = makeZip(digits.map((d, i) => ({ name: `mine/${d.label}/${i}.png`, data: d.png })));
  const dataset = (await json('/v1/datasets', { method: 'POST', headers: { 'content-type': 'application/zip' }, body: new Uint8Array(zip) })).body.id;
  const [probe] = await mnistTestPngs(1, 9000);
  const probePixels = (await loadMnist('test')).images.slice(9000 * 784, 9001 * 784);

  // All four queued at once; the worker runs two at a time.
  const jobs = await Promise.all(ARCHITECTURES.map((architecture) => postJob({ type: 'train', architecture, limit: 600, epochs: 1, seed: 8 })));
  const trained = await Promise.all(jobs.map((j) => finished(j.body.id)));
  await initBackend('wasm');
  const store = new ModelStore(modelsDir);
  for (const [i, architecture] of ARCHITECTURES.entries()) {
    const job = trained[i];
    assert.equal(job.state, 'succeeded', `${architecture}: ${job.error}`);
    const meta = (await json(`/v1/models/${job.modelVersion}`)).body;
    assert.equal(meta.architecture, architecture);
    assert.ok(meta.metrics.testAccuracy > 0.3, `${architecture} learned something: ${meta.metrics.testAccuracy}`);
    // Every architecture's layers have an ONNX translation, proven on the images it was scored on.
    assert.equal(meta.onnx.status, 'exported', `${architecture}: ${meta.onnx.reason}`);
    assert.equal(meta.onnx.parity.images, meta.dataset.testCount);
    assert.ok(meta.onnx.parity.maxProbabilityDifference <= 1e-5 && meta.onnx.parity.argmaxDisagreements === 0, `${architecture}: ${JSON.stringify(meta.onnx.parity)}`);

    // Served by the API's inference thread (which must know the stn's custom layer).
    const predicted = await json(`/v1/predict?version=${job.modelVersion}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(probe.png) });
    assert.equal(predicted.status, 200, `${architecture}: ${JSON.stringify(predicted.body)}`);
    assert.equal(predicted.body.modelVersion, job.modelVersion);

    // The files on disk load in this process and give the probabilities the API gave for the same pixels.
    // The API ran model.onnx on ONNX Runtime; TF.js on the layers files must agree with it.
    const engines = (await json('/v1/models/serving')).body.loaded as { version: number; engine: string }[];
    assert.deepEqual(engines.find((l) => l.version === job.modelVersion), { version: job.modelVersion, engine: 'onnxruntime' }, architecture);
    const model = await loadModel(filesToArtifacts(await store.readModelFiles(job.modelVersion)));
    const topology = JSON.parse(await readFile(join(modelsDir, String(job.modelVersion), 'model.json'), 'utf8')).modelTopology;
    assert.equal(topology.config.name, architecture);
    const served = (await json(`/v1/predict?version=${job.modelVersion}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pixels: [Array.from(probePixels)] }) })).body;
    const local = tf.tidy(() => Array.from((model.predict(tf.div(tf.tensor4d(probePixels, [1, 28, 28, 1], 'float32'), 255)) as tf.Tensor).dataSync()));
    served.predictions[0].probabilities.forEach((p: number, d: number) => assert.ok(Math.abs(p - local[d]) < 1e-5, `${architecture} digit ${d}: served ${p}, loaded ${local[d]}`));
    model.dispose();
  }

  // Fine-tune from its version, features frozen, on the uploaded digits: the two architectures whose
  // saved files carry more than weights (the stn's custom layer, the resnet's batch-norm statistics)
  // go through the worker here; every architecture's frozen layers are checked in test/ml/freeze.test.ts,
  // and a cnn fine-tune through the worker in train-and-predict.test.ts.
  const tuning = (['stn', 'resnet'] as const).map((architecture) => ({ architecture, base: trained[ARCHITECTURES.indexOf(architecture)] }));
  const tunes = await Promise.all(tuning.map(({ base }) => postJob({ type: 'finetune', baseModel: base.modelVersion, dataset, epochs: 1, freeze: 'features', seed: 9 })));
  const tuned = await Promise.all(tunes.map((j) => finished(j.body.id)));
  for (const [i, { architecture, base }] of tuning.entries()) {
    assert.equal(tuned[i].state, 'succeeded', `${architecture} fine-tune: ${tuned[i].error}`);
    const meta = (await json(`/v1/models/${tuned[i].modelVersion}`)).body;
    assert.equal(meta.architecture, architecture);
    assert.deepEqual(meta.lineage, { baseVersion: base.modelVersion, dataset });
    const [before, after] = await Promise.all([base.modelVersion, tuned[i].modelVersion].map(async (v) => loadModel(filesToArtifacts(await store.readModelFiles(v)))));
    const featureWeights = (m: typeof before) => m.layers.filter((l) => l.name !== 'logits').flatMap((l) => l.getWeights().map((w) => Array.from(w.dataSync())));
    assert.deepEqual(featureWeights(after), featureWeights(before), `${architecture}: frozen features (and batch-norm statistics) are unchanged`);
    before.dispose();
    after.dispose();
  }
});

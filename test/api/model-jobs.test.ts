import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import * as tfl from '@tensorflow/tfjs-layers';
import type { InjectOptions } from 'fastify';
import { pino } from 'pino';
import { loadMnist } from '../../src/data/mnist.ts';
import { createCnn } from '../../src/ml/architectures.ts';
import { serializeModel } from '../../src/ml/serialize.ts';
import { importStagingDir } from '../../src/store/import-staging.ts';
import { runFinetuneJob } from '../../src/worker/finetune-job.ts';
import { startWorker, type RunningWorker } from '../../src/worker/start-worker.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { writeFixtureVersion } from '../helpers/fixture-model.ts';
import { finetuneJob } from '../helpers/job-data.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { multipart, type Part } from '../helpers/multipart.ts';
import { waitFor } from '../helpers/env.ts';
import { untrainedModelFiles, writeModelFiles } from '../helpers/serving.ts';

// Import and evaluate are jobs: the API checks the request and queues it; a worker (here in this
// process, running each job in its sandboxed child like in production) does the work.
let api: TestApi;
let worker: RunningWorker;
let fixture = 0;
before(async () => {
  api = await startTestApi({ IMPORT_MAX_ACTIVATIONS: '2000000' });
  worker = await startWorker(api.config, pino({ level: 'silent' }), 'wasm');
  fixture = await writeFixtureVersion(api.app.services.modelStore);
});
after(async () => {
  await worker.close();
  await api.close();
});

const inject = (opts: InjectOptions) => api.app.inject(opts);

async function finished(id: string) {
  return waitFor(`job ${id} to finish`, async () => {
    const job = (await inject({ url: `/v1/jobs/${id}` })).json();
    return ['succeeded', 'failed', 'cancelled'].includes(job.state) ? job : undefined;
  }, 120_000);
}

/** A model as a Keras → tensorflowjs_converter user would bring it: model.json + a weights file. */
async function upload(model: tfl.LayersModel, tamper: (json: Record<string, unknown>, weights: Buffer) => Part[] | void = () => undefined) {
  const files = await serializeModel(model);
  model.dispose();
  const json = JSON.parse(JSON.stringify(files.modelJson));
  const weights = Buffer.from(files.weights);
  const parts = tamper(json, weights) ?? [
    { name: 'files', filename: 'model.json', contentType: 'application/json', data: JSON.stringify(json) },
    { name: 'files', filename: 'group1-shard1of1.bin', contentType: 'application/octet-stream', data: weights },
  ];
  return inject({ method: 'POST', url: '/v1/models', ...multipart(parts) });
}

const mlp = (units = 10) =>
  tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [784], units: 32, activation: 'relu' }), tfl.layers.dense({ units })] }); // logits, no softmax

test('an import answers 202 with a job; the job adapts a [784]-input model with logits, scores it and writes a version that serves', async () => {
  const res = await upload(mlp());
  assert.equal(res.statusCode, 202, res.body);
  const job = res.json();
  assert.equal(res.headers.location, `/v1/jobs/${job.id}`);
  assert.deepEqual({ type: job.type, state: job.state, params: job.params }, { type: 'import', state: 'queued', params: { type: 'import', files: ['model.json', 'group1-shard1of1.bin'] } });

  const done = await finished(job.id);
  assert.equal(done.state, 'succeeded', done.error);
  const meta = (await inject({ url: `/v1/models/${done.modelVersion}` })).json();
  assert.equal(meta.jobId, job.id);
  assert.equal(meta.architecture, 'imported');
  assert.deepEqual(meta.params.adapted, ['flatten [28,28,1] → [784] added in front', 'softmax added after the logits']);
  assert.ok(meta.params.cost.activations > 0 && meta.params.cost.macs > 25_000, `estimated cost ${JSON.stringify(meta.params.cost)}`);
  // Scored on the MNIST test images the worker is set to (MNIST_TEST_LIMIT, 2000 in the tests), and says so.
  assert.equal(meta.dataset.testCount, api.config.MNIST_TEST_LIMIT);
  assert.equal(meta.metrics.confusionMatrix.flat().reduce((a: number, b: number) => a + b, 0), meta.dataset.testCount);
  assert.equal(done.metrics.testAccuracy, meta.metrics.testAccuracy);
  // The adapted model (flatten in front, softmax after) is exported as stored, and served on ONNX Runtime.
  assert.equal(meta.onnx.status, 'exported', meta.onnx.reason);
  assert.equal(meta.onnx.parity.images, meta.dataset.testCount);
  assert.deepEqual(await readdir(importStagingDir(api.config)), [], 'the staged upload is gone once the job has ended');

  const stored = (await inject({ url: `/v1/models/${done.modelVersion}/model.json` })).json();
  assert.deepEqual(stored.modelTopology.config.layers[0].config.batch_input_shape, [null, 28, 28, 1]);
  const [digit] = await mnistTestPngs(1);
  const pred = await inject({ method: 'POST', url: `/v1/predict?version=${done.modelVersion}`, headers: { 'content-type': 'image/png' }, payload: digit.png });
  assert.equal(pred.statusCode, 200, pred.body);
  const p = pred.json().predictions[0].probabilities;
  assert.ok(Math.abs(p.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-4);
});

test('a [28,28,1] softmax model is imported unchanged and can be fine-tuned', async () => {
  const done = await finished((await upload(createCnn(3))).json().id);
  assert.equal(done.state, 'succeeded', done.error);
  const meta = (await inject({ url: `/v1/models/${done.modelVersion}` })).json();
  assert.deepEqual(meta.params.adapted, []);
  const train = await loadMnist('train');
  const small = await api.app.services.datasetStore.create({ images: train.images.subarray(0, 3000 * 784), labels: train.labels.subarray(0, 3000), count: 3000 }, { name: 'mnist-3k', format: 'idx' });
  const outcome = await runFinetuneJob(
    finetuneJob({ baseModel: meta.version, dataset: small.id, freeze: 'features', epochs: 1, batchSize: 32, learningRate: 0.003, validationSplit: 0.1, rehearsal: 0, seed: 1 }),
    { modelsDir: api.config.modelsDir, datasetsDir: api.config.datasetsDir },
    {},
    undefined,
    undefined,
    api.config.MNIST_TEST_LIMIT, // scored like the imported base, on the same 2,000 test images
  );
  assert.ok(outcome.metrics.testAccuracy > meta.metrics.testAccuracy + 0.3, `${meta.metrics.testAccuracy} → ${outcome.metrics.testAccuracy}`);
  assert.equal(outcome.architecture, 'imported');
});

test('uploads that are not a whole layers model are refused at once with 400 and the reason, and nothing is queued or staged', async () => {
  const before = (await inject({ url: '/v1/jobs' })).json().total;
  const cases: [string, ReturnType<typeof upload>, RegExp][] = [
    ['missing weights', upload(mlp(), (json) => [{ name: 'f', filename: 'model.json', data: JSON.stringify(json) }]), /group1-shard1of1.bin.*not uploaded/],
    ['truncated weights', upload(mlp(), (json, w) => [{ name: 'f', filename: 'model.json', data: JSON.stringify(json) }, { name: 'f', filename: 'group1-shard1of1.bin', data: w.subarray(0, 100) }]), /hold 100 bytes/],
    ['not JSON', upload(mlp(), () => [{ name: 'f', filename: 'model.json', data: '{oops' }]), /not valid JSON/],
    ['a graph model', upload(mlp(), (json) => [{ name: 'f', filename: 'model.json', data: JSON.stringify({ ...json, format: 'graph-model' }) }]), /graph-model/],
    [
      'a file the manifest does not name',
      upload(mlp(), (json, w) => [
        { name: 'f', filename: 'model.json', data: JSON.stringify(json) },
        { name: 'f', filename: 'group1-shard1of1.bin', data: w },
        { name: 'f', filename: 'extra.bin', data: Buffer.alloc(1000) },
      ]),
      /extra.bin: not named by model.json/,
    ],
  ];
  for (const [what, pending, message] of cases) {
    const res = await pending;
    assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
    assert.match(res.json().message, message, what);
  }
  assert.equal((await inject({ method: 'POST', url: '/v1/models', payload: { model: 'json' } })).statusCode, 415);
  assert.equal((await inject({ url: '/v1/jobs' })).json().total, before, 'no job was queued');
  assert.deepEqual(await readdir(importStagingDir(api.config)).catch(() => []), []);
});

test('models that cannot serve digits fail their import job with the reason, and write no version', async () => {
  const versions = (await inject({ url: '/v1/models' })).json().items.length;
  const cases: [string, tfl.LayersModel, RegExp][] = [
    ['5 outputs', mlp(5), /10 values/],
    ['a 32×32×3 input', tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [32, 32, 3] }), tfl.layers.dense({ units: 10 })] }), /\[null,28,28,1\] or \[null,784\]/],
  ];
  for (const [what, model, reason] of cases) {
    const done = await finished((await upload(model)).json().id);
    assert.equal(done.state, 'failed', what);
    assert.match(done.error, reason, what);
  }
  assert.equal((await inject({ url: '/v1/models' })).json().items.length, versions);
});

test('a tiny model that would blow up to gigabytes (upsampling 60×) is refused from its layer shapes before it runs', async () => {
  const bomb = tfl.sequential({
    layers: [
      tfl.layers.upSampling2d({ inputShape: [28, 28, 1], size: [60, 60] }),
      tfl.layers.conv2d({ filters: 4, kernelSize: 3 }),
      tfl.layers.globalAveragePooling2d({}),
      tfl.layers.dense({ units: 10, activation: 'softmax' }),
    ],
  });
  const done = await finished((await upload(bomb)).json().id);
  assert.equal(done.state, 'failed');
  assert.match(done.error, /would produce [\d,]+ values per image, most in layer \w+ \((UpSampling2D|Conv2D)\); at most 2,000,000 \(IMPORT_MAX_ACTIVATIONS\)/);
  // The API is unharmed: its own model still serves.
  const [digit] = await mnistTestPngs(1);
  assert.equal((await inject({ method: 'POST', url: `/v1/predict?version=${fixture}`, headers: { 'content-type': 'image/png' }, payload: digit.png })).statusCode, 200);
});

test('an evaluation is a job whose result has accuracy, per-digit accuracy and the confusion matrix, on MNIST test or a stored dataset', async () => {
  const meta = (await inject({ url: `/v1/models/${fixture}` })).json();
  const res = await inject({ method: 'POST', url: `/v1/models/${fixture}/evaluate`, payload: { dataset: 'mnist' } });
  assert.equal(res.statusCode, 202, res.body);
  const done = await finished(res.json().id);
  assert.equal(done.state, 'succeeded', done.error);
  const ev = done.evaluation;
  assert.deepEqual({ version: ev.version, dataset: ev.dataset, count: ev.count }, { version: fixture, dataset: 'mnist', count: 10000 });
  assert.ok(Math.abs(ev.accuracy - meta.metrics.testAccuracy) < 1e-9);
  assert.deepEqual(ev.confusionMatrix, meta.metrics.confusionMatrix);
  assert.equal(ev.perClassAccuracy.length, 10);
  assert.equal(ev.engine, 'onnxruntime', 'the version has a model.onnx: the evaluation runs it');
  assert.ok(ev.seconds > 0 && ev.seconds < 60, `${ev.seconds} s`);

  const test = await loadMnist('test');
  const dataset = await api.app.services.datasetStore.create({ images: test.images.subarray(0, 40 * 784), labels: test.labels.subarray(0, 40), count: 40 }, { name: 'forty', format: 'idx' });
  const onDataset = await finished((await inject({ method: 'POST', url: `/v1/models/${fixture}/evaluate`, payload: { dataset: dataset.id } })).json().id);
  assert.equal(onDataset.evaluation.count, 40);
  assert.equal((await inject({ method: 'POST', url: '/v1/models/99/evaluate', payload: { dataset: 'mnist' } })).statusCode, 404);
  assert.equal((await inject({ method: 'POST', url: `/v1/models/${fixture}/evaluate`, payload: { dataset: 'ds_ffffffffffff' } })).statusCode, 400);
});

test('a worker starting beside versions from before model.onnx exports them in its sandbox, and the API moves the served one onto ONNX Runtime', async () => {
  const { modelStore, registry } = api.app.services;
  const old = await writeModelFiles(modelStore, await untrainedModelFiles(11, { onnx: false }), 11);
  await inject({ method: 'PUT', url: '/v1/models/serving', payload: { version: old } });
  const engineOf = async () => ((await inject({ url: '/v1/models/serving' })).json().loaded as { version: number; engine: string }[]).find((l) => l.version === old)?.engine;
  assert.equal(await engineOf(), 'tfjs');

  const second = await startWorker(api.config, pino({ level: process.env.DEBUG_BACKFILL ? 'info' : 'silent' }), 'wasm');
  try {
    // The worker claims the version in Redis, exports it in a child process, writes model.onnx and
    // the record, and announces the version; the API (same Redis channel) loads it again.
    await waitFor('the served version to run on ONNX Runtime', async () => (await engineOf()) === 'onnxruntime', 60_000, 100);
  } finally {
    await second.close();
  }
  const meta = (await inject({ url: `/v1/models/${old}` })).json();
  assert.equal(meta.onnx.status, 'exported');
  assert.equal(meta.onnx.parity.images, api.config.MNIST_TEST_LIMIT);
  assert.equal(registry.servedVersion, old);
  const [digit] = await mnistTestPngs(1);
  assert.equal((await inject({ method: 'POST', url: '/v1/predict', headers: { 'content-type': 'image/png' }, payload: digit.png })).json().modelVersion, old);
  await inject({ method: 'DELETE', url: '/v1/models/serving' });
});

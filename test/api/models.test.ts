import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { loadLayersModel } from '@tensorflow/tfjs-layers';
import { after, before, test } from 'node:test';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { FIXTURE_TRAINING, writeFixtureVersion } from '../helpers/fixture-model.ts';

let api: TestApi;
before(async () => {
  api = await startTestApi();
});
after(() => api.close());

test('with no versions the list is empty and nothing is served', async () => {
  const res = await api.app.inject({ url: '/v1/models' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { servedVersion: null, pinnedVersion: null, canary: null, servingPolicy: 'best', items: [] });
});

test('versions are listed newest first with test accuracy and the served one marked', async () => {
  const { modelStore, registry } = api.app.services;
  await writeFixtureVersion(modelStore);
  await writeFixtureVersion(modelStore);
  await registry.refresh();
  const list = (await api.app.inject({ url: '/v1/models' })).json();
  assert.equal(list.servedVersion, 2);
  assert.deepEqual(list.items.map((m: { version: number }) => m.version), [2, 1]);
  assert.deepEqual(list.items.map((m: { served: boolean }) => m.served), [true, false]);
  for (const m of list.items) assert.ok(m.testAccuracy > 0.3 && m.testAccuracy <= 1, `version ${m.version} accuracy ${m.testAccuracy}`);
});

test("a version's metadata has params, dataset, history, metrics with a 10×10 confusion matrix", async () => {
  const res = await api.app.inject({ url: '/v1/models/1' });
  assert.equal(res.statusCode, 200);
  const m = res.json();
  assert.equal(m.version, 1);
  assert.equal(m.architecture, 'cnn');
  assert.deepEqual(m.params, FIXTURE_TRAINING);
  assert.deepEqual({ name: m.dataset.name, trainCount: m.dataset.trainCount, testCount: m.dataset.testCount }, { name: 'mnist', trainCount: FIXTURE_TRAINING.limit, testCount: 10000 });
  assert.match(m.dataset.sha256, /^[0-9a-f]{64}$/);
  assert.equal(m.history.length, 1);
  assert.equal(m.backend, 'wasm');
  assert.equal(m.metrics.confusionMatrix.length, 10);
  const cells = m.metrics.confusionMatrix.flat();
  assert.equal(cells.length, 100);
  assert.equal(cells.reduce((a: number, b: number) => a + b, 0), 10000);
  const diagonal = m.metrics.confusionMatrix.reduce((s: number, row: number[], i: number) => s + row[i], 0);
  assert.equal(diagonal / 10000, m.metrics.testAccuracy, 'accuracy is the confusion matrix diagonal');
});

test('unknown versions are 404 and a non-numeric version is 400', async () => {
  assert.equal((await api.app.inject({ url: '/v1/models/99' })).statusCode, 404);
  assert.equal((await api.app.inject({ url: '/v1/models/latest' })).statusCode, 400);
  assert.equal((await api.app.inject({ url: '/v1/models/99/model.json' })).statusCode, 404);
});

test('model.json and its weights are served so tf.loadLayersModel loads the model over HTTP', async () => {
  const json = await api.app.inject({ url: '/v1/models/2/model.json' });
  assert.equal(json.statusCode, 200);
  assert.equal(json.headers['access-control-allow-origin'], '*');
  const manifest = json.json().weightsManifest;
  assert.equal(manifest.length, 1);
  // A fetch that answers from the app, as a browser would from the server.
  const fetchViaInject = async (url: URL | RequestInfo) => {
    const res = await api.app.inject({ url: new URL(String(url)).pathname });
    return new Response(new Uint8Array(res.rawPayload), { status: res.statusCode, headers: { 'content-type': String(res.headers['content-type']) } });
  };
  const model = await loadLayersModel(tf.io.http('http://mnist.test/v1/models/2/model.json', { fetchFunc: fetchViaInject }));
  assert.deepEqual(model.inputs[0].shape, [null, 28, 28, 1]);
  const out = tf.tidy(() => model.predict(tf.zeros([1, 28, 28, 1])) as tf.Tensor);
  assert.deepEqual(out.shape, [1, 10]);
  out.dispose();
  model.dispose();
});

test('model.onnx is served beside them, and runs on ONNX Runtime as the API runs it', async () => {
  const res = await api.app.inject({ url: '/v1/models/2/model.onnx' });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'application/octet-stream');
  assert.deepEqual(new Uint8Array(res.rawPayload), new Uint8Array((await api.app.services.modelStore.readModelFiles(2)).onnx!));
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(new Uint8Array(res.rawPayload));
  assert.deepEqual([session.inputNames, session.outputNames], [['image'], ['probabilities']]);
  const { probabilities } = await session.run({ image: new ort.Tensor('float32', new Float32Array(784), [1, 28, 28, 1]) });
  assert.deepEqual(probabilities.dims, [1, 10]);
  await session.release();
});

test('only files named by the model are served', async () => {
  assert.equal((await api.app.inject({ url: '/v1/models/2/metadata.json' })).statusCode, 404);
  assert.equal((await api.app.inject({ url: '/v1/models/2/..%2F..%2Fetc%2Fpasswd' })).statusCode, 404);
});

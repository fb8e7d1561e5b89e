import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { imageToMnistPixels } from '../../src/image/preprocess.ts';
import { redisKeys } from '../../src/redis/keys.ts';
import { LocalEngine } from '../../src/serving/inference.ts';
import { publishVersion } from '../../src/redis/model-events.ts';
import type { ModelFiles } from '../../src/ml/model-files.ts';
import type { ModelStore } from '../../src/store/model-store.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { waitFor } from '../helpers/env.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { untrainedModelFiles, writeModelFiles } from '../helpers/serving.ts';

/*
 * A new version must take over under load with no failed request and no request answered half by
 * one version and half by another: every response's probabilities must be exactly those of the
 * version it names. Two inference threads, each with its own ONNX Runtime session per version.
 */
let api: TestApi;
let store: ModelStore;
const models: ModelFiles[] = [];
let digits: { png: Buffer; label: number }[];
const expected = new Map<number, Float32Array>(); // version → probabilities of every digit
const write = (i: number) => writeModelFiles(store, models[i], i + 1);

before(async () => {
  api = await startTestApi({ MAX_IMAGES_PER_REQUEST: '8', PREDICT_WORKERS: '2' });
  store = api.app.services.modelStore;
  // Three different models (seeded random weights: what is served matters here, not how well), made
  // up front so that writing one under load is just the write.
  for (const seed of [1, 2, 3]) models.push(await untrainedModelFiles(seed));
  digits = await mnistTestPngs(8);
  const pixels = new Uint8Array(digits.length * 784);
  digits.forEach((d, i) => pixels.set(imageToMnistPixels(d.png), i * 784));
  const engine = new LocalEngine();
  for (const [i, files] of models.entries()) {
    const handle = await engine.load(i + 1, files);
    expected.set(i + 1, (await engine.predict(handle, pixels, digits.length)).probabilities);
  }
  await engine.close();
  assert.equal(await write(0), 1);
  await api.app.services.registry.refresh();
});
after(() => api.close());

interface Answer {
  status: number;
  version?: number;
  startedAt: number;
  finishedAt: number;
}

/** `clients` loops of predict requests (one image, or all 8 in one multipart-free JSON batch) until stop(). */
function load(clients: number) {
  const answers: Answer[] = [];
  let running = true;
  const loops = Array.from({ length: clients }, async (_, c) => {
    for (let k = 0; running; k++) {
      const many = (c + k) % 3 === 0;
      const picked = many ? digits.map((_, i) => i) : [(c + k) % digits.length];
      const startedAt = performance.now();
      const res = await api.app.inject({ method: 'POST', url: '/v1/predict', payload: { images: picked.map((i) => digits[i].png.toString('base64')) } });
      const answer: Answer = { status: res.statusCode, startedAt, finishedAt: performance.now() };
      answers.push(answer);
      if (res.statusCode !== 200) continue;
      const body = res.json() as { modelVersion: number; predictions: { probabilities: number[] }[] };
      answer.version = body.modelVersion;
      const want = expected.get(body.modelVersion);
      assert.ok(want, `unknown version ${body.modelVersion}`);
      body.predictions.forEach((p, j) => {
        const i = picked[j];
        p.probabilities.forEach((v, cls) => assert.ok(Math.abs(v - want[i * 10 + cls]) < 1e-5, `image ${i} class ${cls}: ${v} is not version ${body.modelVersion}'s ${want[i * 10 + cls]}`));
      });
    }
  });
  return {
    answers,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

test('a version announced under load takes over within 1 s with no failed or mixed response', async () => {
  const { registry, redis, config } = api.app.services;
  const traffic = load(16);
  await new Promise((r) => setTimeout(r, 300));
  const written = performance.now();
  assert.equal(await write(1), 2);
  await publishVersion(redis, redisKeys(config.QUEUE_PREFIX).modelEvents, 2);
  await waitFor('version 2 served', async () => registry.servedVersion === 2, 5000, 10);
  const switchMs = performance.now() - written;
  await new Promise((r) => setTimeout(r, 300));
  await traffic.stop();

  const { answers } = traffic;
  assert.ok(answers.length > 20, `traffic ran through the switch: ${answers.length} requests`); // ~100 on a quiet machine, half that on a busy one
  assert.deepEqual(answers.filter((a) => a.status !== 200), [], 'no request failed');
  assert.ok(answers.some((a) => a.version === 1) && answers.some((a) => a.version === 2), 'both versions answered');
  assert.ok(switchMs < 1000, `served ${switchMs.toFixed(0)} ms after it was written`);
  const serving = (await api.app.inject({ url: '/v1/models/serving' })).json();
  assert.deepEqual(serving.loaded.find((l: { version: number }) => l.version === 2), { version: 2, engine: 'onnxruntime' });
  // Ordered by what a client sees: a request sent after an answer from version 2 has arrived never
  // gets version 1. (Not by when requests started: one of eight images, decoded on a thread, can
  // start before a one-image request and still reach the model after the switch.)
  const firstV2Answered = Math.min(...answers.filter((a) => a.version === 2).map((a) => a.finishedAt));
  const lateV1 = answers.filter((a) => a.version === 1 && a.startedAt > firstV2Answered);
  assert.deepEqual(lateV1, [], 'once version 2 has answered, version 1 does not come back');
});

test('without any announcement, the watch on the models directory serves a new version within 1 s', async () => {
  const { registry } = api.app.services;
  const traffic = load(4);
  const written = performance.now();
  assert.equal(await write(2), 3); // no publish: as if the event were lost, or Redis down
  await waitFor('version 3 served', async () => registry.servedVersion === 3, 5000, 10);
  const switchMs = performance.now() - written;
  await traffic.stop();
  assert.deepEqual(traffic.answers.filter((a) => a.status !== 200), []);
  assert.ok(switchMs < 1000, `served ${switchMs.toFixed(0)} ms after it was written`);
});

test('a rollback under load (pin to version 1, then unpin) fails no request either', async () => {
  const traffic = load(8);
  await new Promise((r) => setTimeout(r, 100));
  const pin = await api.app.inject({ method: 'PUT', url: '/v1/models/serving', payload: { version: 1 } });
  assert.equal(pin.statusCode, 200);
  assert.equal(pin.json().servedVersion, 1);
  await new Promise((r) => setTimeout(r, 200));
  const unpin = await api.app.inject({ method: 'DELETE', url: '/v1/models/serving' });
  assert.equal(unpin.json().servedVersion, 3);
  await new Promise((r) => setTimeout(r, 100));
  await traffic.stop();
  assert.deepEqual(traffic.answers.filter((a) => a.status !== 200), []);
  assert.ok(traffic.answers.some((a) => a.version === 1), 'the pinned version answered');
});

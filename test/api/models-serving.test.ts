import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { createApi, type RunningApi } from '../../src/api/start-api.ts';
import type { ModelFiles } from '../../src/ml/model-files.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { waitFor } from '../helpers/env.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { untrainedModelFiles, writeModelFiles, writeUntrainedVersion } from '../helpers/serving.ts';

/* Pin and roll back through the API, with two replicas sharing Redis and the models volume. */
let a: TestApi;
let b: RunningApi;
let png: Buffer;
before(async () => {
  a = await startTestApi();
  b = await createApi(a.config, pino({ level: 'silent' })); // a second replica: same Redis prefix, same models dir
  await writeUntrainedVersion(a.app.services.modelStore, 1);
  await writeUntrainedVersion(a.app.services.modelStore, 2);
  await Promise.all([a.app.services.registry.refresh(), b.app.services.registry.refresh()]);
  [{ png }] = await mnistTestPngs(1);
});
after(async () => {
  await b.close();
  await a.close();
});

const served = (api: { app: RunningApi['app'] }) => api.app.services.registry.servedVersion;
const predictVersion = async (api: { app: RunningApi['app'] }, query = '', headers: Record<string, string> = {}) =>
  (await api.app.inject({ method: 'POST', url: `/v1/predict${query}`, headers: { 'content-type': 'image/png', ...headers }, payload: png })).json().modelVersion;

test('GET /v1/models/serving says what is served, pinned, newest and loaded', async () => {
  const res = await a.app.inject({ url: '/v1/models/serving' });
  assert.equal(res.statusCode, 200);
  const { loadedVersions, loaded, ...rest } = res.json();
  assert.deepEqual(rest, { servedVersion: 2, pinnedVersion: null, latestVersion: 2, canary: null });
  assert.ok(loadedVersions.includes(2), `loaded: ${loadedVersions}`); // version 1 may still be in the LRU
  // Versions written with their model.onnx, as workers write them, run on ONNX Runtime.
  assert.deepEqual(loaded.find((l: { version: number }) => l.version === 2), { version: 2, engine: 'onnxruntime' });
  assert.deepEqual(loaded.map((l: { version: number }) => l.version), loadedVersions);
});

test('PUT /v1/models/serving pins a version on every replica, new versions included', async () => {
  const res = await a.app.inject({ method: 'PUT', url: '/v1/models/serving', payload: { version: 1 } });
  assert.equal(res.statusCode, 200);
  assert.deepEqual({ served: res.json().servedVersion, pinned: res.json().pinnedVersion }, { served: 1, pinned: 1 });
  assert.equal(await predictVersion(a), 1);
  // The other replica hears of it over pub/sub, without a poll (MODEL_POLL_MS is 0 in tests).
  await waitFor('replica b to follow the pin', async () => served(b) === 1, 1000, 10);
  assert.equal(await predictVersion(b), 1);

  await writeUntrainedVersion(a.app.services.modelStore, 3);
  await Promise.all([a.app.services.registry.refresh(), b.app.services.registry.refresh()]);
  assert.deepEqual([served(a), served(b)], [1, 1], 'a new version does not override the pin');
  const list = (await b.app.inject({ url: '/v1/models' })).json();
  assert.equal(list.pinnedVersion, 1);
  assert.equal(list.servedVersion, 1);
  assert.deepEqual(list.items.filter((m: { served: boolean }) => m.served).map((m: { version: number }) => m.version), [1]);
});

test('?version=N still reaches any version while pinned', async () => {
  assert.equal(await predictVersion(a, '?version=3'), 3);
  assert.equal(await predictVersion(a), 1);
});

test('a restarted replica starts with the pin in Redis', async () => {
  const c = await createApi(a.config, pino({ level: 'silent' }));
  try {
    assert.equal(served(c), 1);
    assert.equal(c.app.services.registry.pinnedVersion, 1);
  } finally {
    await c.close();
  }
});

test('pinning a missing version is 404, bad bodies are 400, and a version that cannot load is 409; the pin stays', async () => {
  const missing = await a.app.inject({ method: 'PUT', url: '/v1/models/serving', payload: { version: 99 } });
  assert.equal(missing.statusCode, 404);
  for (const payload of [{}, { version: 'two' }, { version: 0 }, { version: 1, extra: true }]) {
    assert.equal((await a.app.inject({ method: 'PUT', url: '/v1/models/serving', payload })).statusCode, 400, JSON.stringify(payload));
  }
  // A version whose weights do not match its topology: it exists, but cannot be served.
  const good: ModelFiles = await untrainedModelFiles(4);
  const broken = await writeModelFiles(a.app.services.modelStore, { modelJson: good.modelJson, weights: good.weights.subarray(0, 100) }, 4);
  const res = await a.app.inject({ method: 'PUT', url: '/v1/models/serving', payload: { version: broken } });
  assert.equal(res.statusCode, 409);
  assert.match(res.json().message, new RegExp(`version ${broken} cannot be served`));
  assert.deepEqual([served(a), a.app.services.registry.pinnedVersion], [1, 1]);
});

test('DELETE /v1/models/serving goes back to the newest version that loads, on every replica', async () => {
  const res = await b.app.inject({ method: 'DELETE', url: '/v1/models/serving' });
  assert.equal(res.statusCode, 200);
  // Version 4 is broken, so the newest that loads is 3.
  assert.deepEqual({ served: res.json().servedVersion, pinned: res.json().pinnedVersion, latest: res.json().latestVersion }, { served: 3, pinned: null, latest: 4 });
  await waitFor('replica a to follow the unpin', async () => served(a) === 3, 1000, 10);
  assert.equal(await predictVersion(a), 3);
});

test('SERVING_POLICY=best, the default: a less accurate new version is kept and listed with the reason, not served; a better one is', async () => {
  const store = a.app.services.modelStore;
  const refresh = () => Promise.all([a.app.services.registry.refresh(), b.app.services.registry.refresh()]);
  // Versions 1 to 4 score 10 % (4 does not load); 5 scores 5 %.
  const worse = await writeModelFiles(store, await untrainedModelFiles(5), 5, 0.05);
  await refresh();
  assert.deepEqual([served(a), served(b)], [3, 3], 'the less accurate version does not replace the served one');
  const list = (await a.app.inject({ url: '/v1/models' })).json();
  assert.equal(list.servingPolicy, 'best');
  const reasons = Object.fromEntries(list.items.map((m: { version: number; servingReason: string }) => [m.version, m.servingReason]));
  assert.match(reasons[worse], /^not promoted: 5\.00 % test accuracy is below version 4's 10\.00 % \(SERVING_POLICY=best\); pin it to serve it$/);
  assert.match(reasons[4], /^promoted: .*; it does not load, so version 3 serves$/);
  assert.match(reasons[3], /^promoted: 10\.00 % test accuracy, at least version 2's 10\.00 %$/);

  // A replica under SERVING_POLICY=newest serves it at once.
  const newest = await createApi({ ...a.config, SERVING_POLICY: 'newest' }, pino({ level: 'silent' }));
  try {
    assert.equal(served(newest), worse);
    assert.equal((await newest.app.inject({ url: '/v1/models' })).json().items.find((m: { served: boolean }) => m.served).servingReason, 'the newest version (SERVING_POLICY=newest)');
  } finally {
    await newest.close();
  }

  const better = await writeModelFiles(store, await untrainedModelFiles(6), 6, 0.2);
  await refresh();
  assert.deepEqual([served(a), served(b)], [better, better]);
  assert.equal(await predictVersion(a), better);
});

test('a canary answers its share of requests on every replica, a client by its X-Request-Id always the same version; promote makes it the served one', async () => {
  const put = (payload: object) => a.app.inject({ method: 'PUT', url: '/v1/models/serving', payload });
  const served6 = served(a)!; // the better version of the test before
  const res = await put({ version: served6, canary: { version: 3, fraction: 0.3 } });
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual([res.json().pinnedVersion, res.json().canary], [served6, { version: 3, fraction: 0.3 }]);
  await waitFor('replica b to route to the canary', async () => b.app.services.registry.activeCanary?.version === 3, 1000, 10);
  assert.deepEqual(a.app.services.registry.defaultVersions, [served6, 3], 'reported to retention, so the canary is never deleted');

  // By request id: about 30 % of clients, each always the same version, on either replica.
  const byClient = new Map<string, number>();
  for (let i = 0; i < 150; i++) byClient.set(`client-${i}`, await predictVersion(a, '', { 'x-request-id': `client-${i}` }));
  const share = [...byClient.values()].filter((v) => v === 3).length / byClient.size;
  assert.ok(share > 0.15 && share < 0.45, `canary share ${share}`);
  for (const id of ['client-1', 'client-2', 'client-3', 'client-4']) {
    for (const api of [a, b, a]) assert.equal(await predictVersion(api, '', { 'x-request-id': id }), byClient.get(id), id);
  }
  // No id: a coin per request, so both versions answer.
  const anonymous = new Set<number>();
  for (let i = 0; i < 40 && anonymous.size < 2; i++) anonymous.add(await predictVersion(b));
  assert.deepEqual([...anonymous].sort((x, y) => x - y), [3, served6]);
  assert.equal(await predictVersion(a, '?version=2', { 'x-request-id': 'client-1' }), 2, '?version= wins over the canary');

  const metrics = (await a.app.inject({ url: '/metrics' })).body;
  for (const name of ['mnist_predictions_total', 'mnist_predict_request_seconds_count', 'mnist_prediction_confidence_count']) {
    for (const v of [3, served6]) assert.match(metrics, new RegExp(`^${name}\\{model_version="${v}",engine="onnxruntime"\\} [1-9]`, 'm'), `${name} for ${v}`);
  }
  const list = (await a.app.inject({ url: '/v1/models' })).json();
  assert.deepEqual(list.canary, { version: 3, fraction: 0.3 });
  assert.equal(list.items.find((m: { version: number }) => m.version === 3).servingReason, 'canary: answers 30 % of predict requests (PUT /v1/models/serving)');

  // Refused, and nothing changes: the canary is the pinned version, a missing one, a share out of (0, 1).
  assert.equal((await put({ version: 3, canary: { version: 3, fraction: 0.5 } })).statusCode, 400);
  assert.equal((await put({ version: served6, canary: { version: 99, fraction: 0.5 } })).statusCode, 404);
  for (const fraction of [0, 1, 1.5]) assert.equal((await put({ version: served6, canary: { version: 3, fraction } })).statusCode, 400, String(fraction));
  assert.deepEqual((await a.app.inject({ url: '/v1/models/serving' })).json().canary, { version: 3, fraction: 0.3 });

  const promoted = await b.app.inject({ method: 'POST', url: '/v1/models/serving/canary/promote' });
  assert.equal(promoted.statusCode, 200);
  assert.deepEqual([promoted.json().servedVersion, promoted.json().pinnedVersion, promoted.json().canary], [3, 3, null]);
  await waitFor('replica a to serve the promoted canary', async () => served(a) === 3 && !a.app.services.registry.activeCanary, 1000, 10);
  assert.equal(await predictVersion(a, '', { 'x-request-id': 'client-5' }), 3);
  assert.equal((await a.app.inject({ method: 'POST', url: '/v1/models/serving/canary/promote' })).statusCode, 404, 'no canary to promote');

  // A canary ended by DELETE, and one ended by a PUT that names none.
  assert.equal((await put({ version: 3, canary: { version: served6, fraction: 0.5 } })).statusCode, 200);
  const ended = await a.app.inject({ method: 'DELETE', url: '/v1/models/serving/canary' });
  assert.deepEqual([ended.statusCode, ended.json().canary, ended.json().servedVersion], [200, null, 3]);
  assert.equal((await put({ version: 3, canary: { version: served6, fraction: 0.5 } })).statusCode, 200);
  assert.equal((await put({ version: 3 })).json().canary, null);
  await waitFor('replica b to end the canary', async () => b.app.services.registry.canarySetting === undefined, 1000, 10);
});

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { PredictBatcher } from '../../src/serving/batcher.ts';
import { ModelRegistry, NoModelError } from '../../src/serving/model-registry.ts';
import { UnservableVersionError } from '../../src/serving/loaded-versions.ts';
import { MemoryPinStore, RedisPinStore } from '../../src/redis/serving-pin.ts';
import { MemoryCanaryStore } from '../../src/redis/serving-canary.ts';
import { ModelStore, VersionNotFoundError } from '../../src/store/model-store.ts';
import { REDIS_URL } from '../helpers/env.ts';
import { fakeImage, FakeEngine, writeFakeVersion } from '../helpers/fake-engine.ts';

const log = pino({ level: 'silent' });
let base: string;
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'mnist-registry-'));
});
after(() => rm(base, { recursive: true, force: true }));

let n = 0;
async function setup(opts: { cacheSize?: number } = {}) {
  const store = new ModelStore(join(base, String(n++)));
  const engine = new FakeEngine();
  const registry = new ModelRegistry(store, engine, log, { cacheSize: opts.cacheSize ?? 3 });
  // Predictions go the way the API sends them: through a batcher, which leases a version per call.
  const batcher = new PredictBatcher(registry, engine, { maxBatchSize: 32, timeoutMs: 0 });
  const predict = (images: Uint8Array[], version?: number) => batcher.predict(images, version);
  return { store, engine, registry, predict };
}

test('with no version, predict is a 503 that says how to train one', async () => {
  const { predict } = await setup();
  await assert.rejects(predict([fakeImage(1)]), (err: Error) => err instanceof NoModelError && /POST \/v1\/jobs/.test(err.message));
});

test('the newest version is served; a newer one is picked up on refresh', async () => {
  const { store, registry, predict } = await setup();
  await writeFakeVersion(store);
  await registry.refresh();
  assert.equal(registry.servedVersion, 1);
  await writeFakeVersion(store);
  await registry.refresh();
  assert.equal(registry.servedVersion, 2);
  assert.equal((await predict([fakeImage(4)])).modelVersion, 2);
});

test('a version that fails to load never replaces a good one, and is not retried on every refresh', async () => {
  const { store, engine, registry, predict } = await setup();
  await writeFakeVersion(store);
  await registry.refresh();
  await writeFakeVersion(store, { broken: true });
  await registry.refresh();
  await registry.refresh();
  assert.equal(registry.servedVersion, 1);
  assert.deepEqual(engine.loads, [1, 2], 'version 2 was tried once');
  const res = await predict([fakeImage(3)]);
  assert.deepEqual([res.modelVersion, res.predictions[0].digit], [1, 3]);
  // Asked for explicitly, it is a clear 409, not a 500.
  await assert.rejects(predict([fakeImage(3)], 2), (err: Error) => err instanceof UnservableVersionError && err.kind === 'conflict' && /broken/.test(err.message));
});

test('at start-up a broken newest version falls back to the newest one that loads', async () => {
  const { store, registry } = await setup();
  await writeFakeVersion(store);
  await writeFakeVersion(store, { broken: true });
  await registry.refresh();
  assert.equal(registry.servedVersion, 1);
});

test('a new version is loaded and warmed up before it takes traffic; the old one answers meanwhile', async () => {
  const { store, engine, registry, predict } = await setup();
  await writeFakeVersion(store);
  await registry.refresh();
  await writeFakeVersion(store);
  engine.loadDelayMs = 200;
  const switching = registry.refresh();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await predict([fakeImage(0)])).modelVersion, 1, 'still version 1 while 2 loads');
  await switching;
  assert.equal((await predict([fakeImage(0)])).modelVersion, 2);
});

test('?version=N loads on demand into an LRU: at most cacheSize versions in memory, the served one never evicted', async () => {
  const { store, engine, registry, predict } = await setup({ cacheSize: 2 });
  for (let i = 0; i < 4; i++) await writeFakeVersion(store);
  await registry.refresh();
  assert.equal(registry.servedVersion, 4);
  for (const v of [1, 2, 3, 1]) assert.equal((await predict([fakeImage(0)], v)).modelVersion, v);
  assert.ok(engine.loadedVersions.length <= 2, `loaded: ${engine.loadedVersions}`);
  assert.ok(engine.loadedVersions.includes(4), 'the served version stays loaded');
  assert.deepEqual(registry.loadedVersions, engine.loadedVersions.slice().reverse());
  await assert.rejects(predict([fakeImage(0)], 9), VersionNotFoundError);
});

test('a cached version is reused, the least recently used one is evicted', async () => {
  const { store, engine, registry, predict } = await setup({ cacheSize: 3 });
  for (let i = 0; i < 4; i++) await writeFakeVersion(store);
  await registry.refresh(); // serves 4
  await predict([fakeImage(0)], 1);
  await predict([fakeImage(0)], 2);
  await predict([fakeImage(0)], 1); // 1 is now more recent than 2
  assert.deepEqual(engine.loads, [4, 1, 2], 'no reload of a cached version');
  await predict([fakeImage(0)], 3); // evicts 2, the least recently used
  assert.deepEqual(engine.unloads, [2]);
  assert.deepEqual(engine.loadedVersions, [1, 3, 4]);
});

test('a canary stays loaded whatever ?version=N loads beside it; one that cannot load takes no traffic', async () => {
  const { store, engine, registry, predict } = await setup({ cacheSize: 2 });
  for (let i = 0; i < 4; i++) await writeFakeVersion(store);
  await registry.refresh(); // serves 4
  await registry.pin(4, { version: 1, fraction: 0.5 });
  assert.deepEqual(registry.defaultVersions, [4, 1]);
  for (const v of [2, 3, 2]) assert.equal((await predict([fakeImage(0)], v)).modelVersion, v);
  assert.ok(engine.loadedVersions.includes(1) && engine.loadedVersions.includes(4), `served and canary stay loaded: ${engine.loadedVersions}`);
  assert.equal(engine.unloads.filter((v) => v === 1).length, 0, 'the canary was never evicted');
  // Routed by key: the same key always the same version, and both versions answer some keys.
  const routed = Array.from({ length: 200 }, (_, i) => registry.route(`key:${i}`) ?? 4);
  assert.deepEqual([...new Set(routed)].sort(), [1, 4]);
  assert.deepEqual(Array.from({ length: 200 }, (_, i) => registry.route(`key:${i}`) ?? 4), routed);

  // Ended, it is an ordinary member of the LRU again.
  await registry.endCanary();
  assert.deepEqual(registry.defaultVersions, [4]);
  assert.equal(registry.route('key:1'), undefined);
  await predict([fakeImage(0)], 2);
  await predict([fakeImage(0)], 3);
  assert.ok(engine.unloads.includes(1), 'evicted once it is no canary');

  // A canary whose files break after it was set (here: set on another replica) is logged, not routed to.
  const broken = await writeFakeVersion(store, { broken: true });
  const canaries = new MemoryCanaryStore();
  await canaries.set({ version: broken, fraction: 0.9 });
  const other = new ModelRegistry(store, engine, log, { cacheSize: 2, canaries });
  await other.refresh();
  assert.deepEqual([other.canarySetting?.version, other.activeCanary, other.defaultVersions], [broken, undefined, [4]]);
  assert.equal(other.route('key:1'), undefined);
  other.dispose();
});

test('an evicted or replaced version is not unloaded while a model call still holds it', async () => {
  const { store, engine, registry } = await setup({ cacheSize: 1 });
  await writeFakeVersion(store);
  await registry.refresh();
  const lease = await registry.acquire();
  await writeFakeVersion(store);
  await registry.refresh(); // switches to 2; with room for one version, 1 must go — but not yet
  assert.equal(registry.servedVersion, 2);
  assert.deepEqual(engine.unloads, []);
  const { probabilities: probs } = await engine.predict(lease.handle, fakeImage(7), 1);
  assert.equal(probs[7], 1);
  lease.release();
  lease.release(); // idempotent
  assert.deepEqual(engine.unloads, [1]);
});

test('pin serves that version even when newer ones appear; unpin goes back to the newest', async () => {
  const { store, registry } = await setup();
  await writeFakeVersion(store);
  await writeFakeVersion(store);
  await registry.refresh();
  const pinned = await registry.pin(1);
  assert.deepEqual({ served: pinned.servedVersion, pinned: pinned.pinnedVersion, latest: pinned.latestVersion }, { served: 1, pinned: 1, latest: 2 });
  await writeFakeVersion(store);
  await registry.refresh();
  assert.equal(registry.servedVersion, 1);
  const unpinned = await registry.unpin();
  assert.deepEqual({ served: unpinned.servedVersion, pinned: unpinned.pinnedVersion }, { served: 3, pinned: null });
});

test('pinning a missing version is a 404 and a broken one a 409; either way nothing changes', async () => {
  const { store, registry } = await setup();
  await writeFakeVersion(store);
  await writeFakeVersion(store, { broken: true });
  await registry.refresh();
  await assert.rejects(registry.pin(5), VersionNotFoundError);
  await assert.rejects(registry.pin(2), (err: Error) => err instanceof UnservableVersionError && err.kind === 'conflict');
  assert.equal(registry.servedVersion, 1);
  assert.equal(registry.pinnedVersion, undefined);
});

test('a pin in Redis is shared: another replica serves the pinned version on its next refresh', async () => {
  const key = `test-pin-${process.pid}-${Date.now()}`;
  const redis = new Redis(REDIS_URL);
  try {
    const store = new ModelStore(join(base, 'shared'));
    await writeFakeVersion(store);
    await writeFakeVersion(store);
    const replica = () => new ModelRegistry(store, new FakeEngine(), log, { pins: new RedisPinStore(redis, key, `${key}:events`) });
    const a = replica();
    const b = replica();
    await Promise.all([a.refresh(), b.refresh()]);
    assert.deepEqual([a.servedVersion, b.servedVersion], [2, 2]);
    await a.pin(1);
    assert.equal(await redis.get(key), '1');
    await b.refresh();
    assert.equal(b.servedVersion, 1);
    await b.unpin();
    await a.refresh();
    assert.deepEqual([a.servedVersion, b.servedVersion, await redis.get(key)], [2, 2, null]);
  } finally {
    await redis.del(key);
    redis.disconnect();
  }
});

test('when the pin cannot be read (Redis down), the last known pin stays in force', async () => {
  const store = new ModelStore(join(base, 'pin-outage'));
  await writeFakeVersion(store);
  await writeFakeVersion(store);
  const pins = new MemoryPinStore();
  const registry = new ModelRegistry(store, new FakeEngine(), log, { pins });
  await registry.pin(1);
  pins.get = async () => {
    throw new Error('connection refused');
  };
  await registry.refresh();
  assert.equal(registry.servedVersion, 1);
});

test('refreshes asked for during a refresh coalesce into one more', async () => {
  const { store, registry } = await setup();
  await writeFakeVersion(store);
  let lists = 0;
  const list = store.listVersions.bind(store);
  store.listVersions = async () => {
    lists++;
    await new Promise((r) => setTimeout(r, 20));
    return list();
  };
  await Promise.all(Array.from({ length: 20 }, () => registry.refresh()));
  assert.ok(lists <= 2, `${lists} directory listings for 20 refreshes`);
});

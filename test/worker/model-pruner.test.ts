import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { Config } from '../../src/config.ts';
import { redisKeys } from '../../src/redis/keys.ts';
import { trainingQueue } from '../../src/queue/queues.ts';
import { readServedVersions, reportServedVersion } from '../../src/redis/served-versions.ts';
import { ModelStore } from '../../src/store/model-store.ts';
import { createModelPruner, createWorkerModelPruner } from '../../src/worker/model-pruner.ts';
import { startWorker } from '../../src/worker/start-worker.ts';
import { REDIS_URL, testConfig, waitFor } from '../helpers/env.ts';
import { finetuneJob, trainJob } from '../helpers/job-data.ts';
import { fakeMetadata, fakeModelFiles } from '../helpers/store-fixtures.ts';

// Retention as the worker runs it: what is in use comes from Redis (pin, replicas' reports, queued fine-tunes).
const log = pino({ level: 'silent' });
let redis: Redis;
let config: Config;
let cleanup = async () => {};

before(async () => {
  ({ config, cleanup } = await testConfig({ MODEL_KEEP_LAST: '1' }));
  redis = new Redis(REDIS_URL);
});
after(async () => {
  redis.disconnect();
  await cleanup();
});

const files = fakeModelFiles(0, 8);
const meta = fakeMetadata();

async function writeVersions(store: ModelStore, count: number) {
  for (let i = 0; i < count; i++) await store.writeVersion(files, meta);
}

test('an API replica reports the versions it serves (a canary too); a report from a replica gone quiet is dropped', async () => {
  const key = `${config.QUEUE_PREFIX}:served-test`;
  let served = [4];
  const reporter = reportServedVersion({ redis, key, servedVersions: () => served, log, intervalMs: 50, replicaId: 'replica-a' });
  await reporter.report();
  assert.deepEqual(await readServedVersions(redis, key), [4]);
  served = [5, 3];
  await new Promise((r) => setTimeout(r, 150)); // the interval re-reports
  assert.deepEqual(await readServedVersions(redis, key), [5, 3]);
  served = [5];
  await reporter.report();
  await redis.hset(key, 'replica-gone', JSON.stringify({ version: 2, at: 1000 }), 'replica-garbled', 'not json');
  assert.deepEqual(await readServedVersions(redis, key), [5]);
  assert.deepEqual(Object.keys(await redis.hgetall(key)), ['replica-a'], 'stale and unreadable entries are removed');
  await reporter.stop();
  assert.deepEqual(await readServedVersions(redis, key), []);
});

test('with MODEL_KEEP_LAST=1 the worker keeps the newest, the pinned, the canary, the served and the bases of unfinished fine-tunes', async () => {
  const store = new ModelStore(config.modelsDir);
  await writeVersions(store, 7);
  const keys = redisKeys(config.QUEUE_PREFIX);
  await redis.set(keys.modelPin, '2');
  await redis.set(keys.modelCanary, JSON.stringify({ version: 4, fraction: 0.1 }));
  const reporter = reportServedVersion({ redis, key: keys.modelServed, servedVersions: () => [3], log, replicaId: 'replica-b' });
  await reporter.report();
  await redis.hset(keys.modelServed, 'replica-dead', JSON.stringify({ version: 1, at: Date.now() - 10 * 60_000 }));
  const queue = trainingQueue(redis, config.QUEUE_PREFIX);
  await queue.add('finetune', finetuneJob({ baseModel: 5, dataset: 'mnist', seed: 1 })); // no worker: stays waiting
  await queue.add('train', trainJob({ seed: 1 }));

  const pruner = createWorkerModelPruner(config, store, redis, log);
  await pruner.run();
  assert.deepEqual(await store.listVersions(), [7, 5, 4, 3, 2]);

  // Unpinned, the canary ended, the fine-tune gone and the replica now on 7: the next run deletes them.
  await redis.del(keys.modelPin, keys.modelCanary);
  await queue.obliterate({ force: true });
  await reporter.stop();
  await pruner.run();
  assert.deepEqual(await store.listVersions(), [7]);
  await pruner.close();
  await queue.close();
});

test('when what is in use cannot be read, nothing is deleted', async () => {
  const store = new ModelStore(`${config.modelsDir}-closed`);
  await writeVersions(store, 3);
  const pruner = createModelPruner({ store, keepLast: 1, log, inUse: () => Promise.reject(new Error('Redis is away')) });
  await pruner.run();
  assert.deepEqual(await store.listVersions(), [3, 2, 1]);
});

test('MODEL_KEEP_LAST=0 (the default) never deletes anything', async () => {
  const store = new ModelStore(`${config.modelsDir}-all`);
  await writeVersions(store, 3);
  const pruner = createWorkerModelPruner({ ...config, MODEL_KEEP_LAST: 0 }, store, redis, log);
  await pruner.run();
  assert.deepEqual(await store.listVersions(), [3, 2, 1]);
  await pruner.close();
});

test('runs asked for during a run coalesce into one more run after it', async () => {
  const store = new ModelStore(`${config.modelsDir}-coalesce`);
  await writeVersions(store, 3);
  let calls = 0;
  let open = () => {};
  const gate = new Promise<void>((r) => (open = r));
  const pruner = createModelPruner({
    store,
    keepLast: 1,
    log,
    inUse: async () => {
      calls++;
      await gate;
      return [];
    },
  });
  const runs = [pruner.run(), pruner.run(), pruner.run()];
  open();
  await Promise.all(runs);
  assert.equal(calls, 2);
  assert.deepEqual(await store.listVersions(), [3]);
});

test('a worker started with MODEL_KEEP_LAST applies it at start-up', async () => {
  const dir = `${config.modelsDir}-worker`;
  const store = new ModelStore(dir);
  await writeVersions(store, 4);
  const running = await startWorker({ ...config, MODEL_KEEP_LAST: 2, modelsDir: dir }, log, 'wasm');
  try {
    await waitFor('versions 1 and 2 to be deleted', async () => (await store.listVersions()).join() === '4,3', 5000, 50);
  } finally {
    await running.close();
  }
});

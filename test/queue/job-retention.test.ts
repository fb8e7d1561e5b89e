import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.ts';
import { jobRetentionOptions, keepFinishedJobs, pruneJobKeys, workerJobRetention } from '../../src/queue/job-retention.ts';
import { modelJobsQueue, trainingQueue, trainingWorker } from '../../src/queue/queues.ts';
import { redisKeys } from '../../src/redis/keys.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { REDIS_URL, waitFor } from '../helpers/env.ts';

test('by default finished jobs are kept a week and at most 1000 of each kind', () => {
  const config = loadConfig({});
  assert.deepEqual(keepFinishedJobs(config), { age: 604800, count: 1000 });
  assert.deepEqual(jobRetentionOptions(config), { removeOnComplete: { age: 604800, count: 1000 }, removeOnFail: { age: 604800, count: 1000 } });
});

test('0 lifts a limit; both 0 keep every finished job', () => {
  assert.deepEqual(keepFinishedJobs(loadConfig({ JOB_RETENTION_SECONDS: '0', JOB_RETENTION_COUNT: '5' })), { count: 5 });
  assert.deepEqual(keepFinishedJobs(loadConfig({ JOB_RETENTION_SECONDS: '60', JOB_RETENTION_COUNT: '0' })), { age: 60 });
  const all = loadConfig({ JOB_RETENTION_SECONDS: '0', JOB_RETENTION_COUNT: '0' });
  assert.equal(keepFinishedJobs(all), undefined);
  assert.deepEqual(jobRetentionOptions(all), { removeOnComplete: false, removeOnFail: false });
  assert.deepEqual(workerJobRetention(all), {});
  assert.throws(() => loadConfig({ JOB_RETENTION_COUNT: '-1' }), /JOB_RETENTION_COUNT/);
});

describe('through the API and a real BullMQ worker', () => {
  let api: TestApi;
  let connection: Redis;
  let worker: ReturnType<typeof trainingWorker> | undefined;

  before(async () => {
    api = await startTestApi({ JOB_RETENTION_SECONDS: '3600', JOB_RETENTION_COUNT: '2' });
    connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  });
  after(async () => {
    await worker?.close();
    connection.disconnect();
    await api.close();
  });

  test('jobs queued by the API carry the configured retention, and BullMQ keeps only that many', async () => {
    const post = (limit: number) => api.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'train', limit } });
    const ids: string[] = [];
    for (const limit of [10, 10, 10, 10, 11, 11, 11]) {
      const res = await post(limit);
      assert.equal(res.statusCode, 202, res.body);
      ids.push(res.json().id);
    }
    const queue = trainingQueue(connection, api.config.QUEUE_PREFIX);
    try {
      const job = await queue.getJob(ids[0]);
      assert.deepEqual(job?.opts.removeOnComplete, { age: 3600, count: 2 });
      assert.deepEqual(job?.opts.removeOnFail, { age: 3600, count: 2 });

      // A stand-in worker: limit 10 succeeds, limit 11 fails.
      worker = trainingWorker(
        async (j) => {
          if (j.data.type === 'train' && j.data.limit === 11) throw new Error('made to fail');
          return { modelVersion: 1, metrics: { testAccuracy: 0.5, testLoss: 1 } };
        },
        { connection, prefix: api.config.QUEUE_PREFIX },
      );
      const counts = await waitFor('every job to finish', async () => {
        const c = await queue.getJobCounts('waiting', 'active', 'completed', 'failed');
        return c.waiting + c.active === 0 ? c : undefined;
      }, 15_000);
      assert.equal(counts.completed, 2);
      assert.equal(counts.failed, 2);
      // The newest of each kind remain, and the API lists only those.
      const kept = [ids[2], ids[3], ids[5], ids[6]];
      for (const id of ids) assert.equal(Boolean(await queue.getJob(id)), kept.includes(id), id);
      const listed = (await api.app.inject({ method: 'GET', url: '/v1/jobs?limit=100' })).json();
      assert.deepEqual(listed.items.map((j: { id: string }) => j.id).sort(), [...kept].sort());
      assert.equal(listed.total, 4);
    } finally {
      await queue.close();
    }
  });

  test("the jobs index and the cancelled set drop the ids of jobs retention removed, and keep the others'", async () => {
    await worker?.close(); // no one runs jobs now: the live one stays queued
    worker = undefined;
    const keys = redisKeys(api.config.QUEUE_PREFIX);
    const training = trainingQueue(connection, api.config.QUEUE_PREFIX);
    const models = modelJobsQueue(connection, api.config.QUEUE_PREFIX);
    try {
      // Ids left behind by removed jobs, beside live jobs of both queues, one of them cancelled.
      const live = (await api.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'train', limit: 10 } })).json().id;
      await api.app.services.jobs.cancel(live, 0);
      const gone = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];
      await connection.zadd(keys.jobIndex, 1, gone[0], 2, gone[1]);
      await connection.sadd(keys.cancelled, ...gone);
      const dropped = await pruneJobKeys(connection, keys, [training, models]);
      assert.equal(dropped, 4);
      const index = await connection.zrange(keys.jobIndex, 0, -1);
      assert.ok(index.includes(live) && !gone.some((id) => index.includes(id)));
      assert.deepEqual(await connection.smembers(keys.cancelled), [live]);
    } finally {
      await Promise.all([training.close(), models.close()]);
    }
  });
});

import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { waitFor } from '../helpers/env.ts';
import { isAlive, openQueue, startCluster, type Cluster } from '../helpers/workers.ts';

// SIGTERM (a deploy, a scale-down): the worker checkpoints the running job at the next batch, gives
// it back to the queue and exits promptly; another worker goes on from that batch.
const SHUTDOWN_TIMEOUT_MS = 20_000;
let cluster: Cluster;
let bull: ReturnType<typeof openQueue>;

before(async () => {
  cluster = await startCluster({ WORKER_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) }); // stall settings left at their (long) defaults
  bull = openQueue(cluster.prefix);
});

after(async () => {
  await bull?.close();
  await cluster?.close();
});

const json = (path: string, init?: RequestInit) => cluster.json(path, init);
const logs = () => cluster.logs();

test('SIGTERM to a worker mid-job: it checkpoints, requeues the job and exits in time; the other worker finishes it from there with one version', async () => {
  const created = await json('/v1/jobs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'train', limit: 2000, epochs: 3, batchSize: 64, learningRate: 0.002, learningRateSchedule: 'constant', seed: 31 }),
  });
  const id = created.body.id;
  await waitFor('epoch 2 under way', async () => {
    const { body } = await json(`/v1/jobs/${id}`);
    return body.history.length >= 1 && body.progress?.epoch === 2 && body.progress.batch >= 5;
  }, 120_000).catch((err) => {
    throw new Error(`${err.message}\n${logs()}`);
  });
  const processedBy = (await bull.queue.getJob(id))!.processedBy;
  const leaving = cluster.workers.find((w) => processedBy === `${hostname()}:${w.child.pid}`)!;
  const staying = cluster.workers.find((w) => w !== leaving)!;
  const [trainer] = leaving.trainers();
  assert.ok(trainer, 'the job trains in a child process of the worker');

  const sent = Date.now();
  leaving.child.kill('SIGTERM');
  const exit = await leaving.exited;
  const tookMs = Date.now() - sent;
  assert.deepEqual(exit, { code: 0, signal: null }, leaving.output());
  assert.ok(tookMs < SHUTDOWN_TIMEOUT_MS, `exited after ${tookMs} ms`);
  await waitFor('its training process to be gone too', async () => !isAlive(trainer), 5000);
  assert.match(leaving.output(), /training paused for shutdown; job back in the queue/);

  const done = await waitFor('the job to finish', async () => {
    const { body } = await json(`/v1/jobs/${id}`);
    return ['succeeded', 'failed', 'cancelled'].includes(body.state) ? body : undefined;
  }, 120_000).catch((err) => {
    throw new Error(`${err.message}\n${logs()}`);
  });
  assert.equal(done.state, 'succeeded', `${done.error}\n${logs()}`);
  assert.ok(done.resumedFromEpoch >= 1, `resumed after epoch ${done.resumedFromEpoch}`);
  assert.deepEqual(done.history.map((h: { epoch: number }) => h.epoch), [1, 2, 3]);
  // Mid-epoch: the other worker goes on from the batch after the checkpoint, not from the epoch's start.
  const resumed = /"epochsDone":(\d+),"batchesDone":(\d+)[^\n]*resuming from the checkpoint/.exec(staying.output());
  assert.ok(resumed && Number(resumed[2]) > 0, `resumed mid-epoch: ${resumed?.[0]}`);
  const bullJob = (await bull.queue.getJob(id))!;
  assert.equal(bullJob.processedBy, `${hostname()}:${staying.child.pid}`);
  assert.equal(bullJob.attemptsMade, 1, 'one attempt, the one that finished: a shutdown does not count as one');
  assert.equal(bullJob.attemptsStarted, 2);
  assert.equal(bullJob.stalledCounter, 0, 'nor a crash');
  assert.deepEqual((await readdir(cluster.modelsDir)).filter((n) => !n.startsWith('.')), ['1']);
  assert.deepEqual(await readdir(join(cluster.modelsDir, '.checkpoints')).catch(() => []), []);
});

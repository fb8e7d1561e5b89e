import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { testConfig, waitFor } from '../helpers/env.ts';
import { freePort, startProcess, type Proc } from '../helpers/processes.ts';
import { isAlive, openQueue, startWorkerProcess, workerReady, type WorkerProc } from '../helpers/workers.ts';

// SIGTERM (a deploy, a scale-down): the worker checkpoints the running job at the next batch, gives
// it back to the queue and exits promptly; another worker goes on from that batch.
const SHUTDOWN_TIMEOUT_MS = 20_000;
let base = '';
let modelsDir = '';
let api: Proc;
const workers: WorkerProc[] = [];
let cleanup = async () => {};
let bull: ReturnType<typeof openQueue>;

before(async () => {
  const { config, cleanup: clean } = await testConfig();
  cleanup = clean;
  modelsDir = config.modelsDir;
  const port = await freePort();
  const env = { REDIS_URL: config.REDIS_URL, QUEUE_PREFIX: config.QUEUE_PREFIX, MODELS_DIR: modelsDir, DATASETS_DIR: config.datasetsDir, TF_BACKEND: 'wasm', LOG_LEVEL: 'info', PORT: String(port), HOST: '127.0.0.1', PREDICT_WORKERS: '0' };
  api = startProcess('src/api.ts', env);
  const workerEnv = { ...env, WORKER_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) }; // stall settings left at their (long) defaults
  workers.push(startWorkerProcess('a', workerEnv), startWorkerProcess('b', workerEnv));
  bull = openQueue(config.QUEUE_PREFIX);
  base = `http://127.0.0.1:${port}`;
  await waitFor('the API to be ready', () => fetch(`${base}/readyz`).then((r) => r.ok, () => false), 60_000).catch((err) => {
    throw new Error(`${err.message}\n--- api ---\n${api.output()}`);
  });
  await Promise.all(workers.map((w) => workerReady(w)));
});

after(async () => {
  await Promise.all([api.stop(), ...workers.map((w) => w.stop())]);
  await bull?.close();
  await cleanup();
});

const json = async (path: string, init?: RequestInit) => {
  const res = await fetch(`${base}${path}`, init);
  return { status: res.status, body: await res.json() };
};
const logs = () => workers.map((w) => `--- worker ${w.name} ---\n${w.output()}`).join('\n');

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
  const leaving = workers.find((w) => processedBy === `${hostname()}:${w.child.pid}`)!;
  const staying = workers.find((w) => w !== leaving)!;
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
  assert.deepEqual((await readdir(modelsDir)).filter((n) => !n.startsWith('.')), ['1']);
  assert.deepEqual(await readdir(join(modelsDir, '.checkpoints')).catch(() => []), []);
});

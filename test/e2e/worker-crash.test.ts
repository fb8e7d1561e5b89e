import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { waitFor } from '../helpers/env.ts';
import { isAlive, openQueue, startCluster, startWorkerProcess, workerReady, type Cluster, type WorkerProc } from '../helpers/workers.ts';

// Workers die for real here (SIGKILL to the worker and its training process): the job must be found
// stalled, resumed by another worker from its last epoch checkpoint, and end with one version.
// A dead worker's job is back in the queue within ~6 s; one crash is resumed, a second fails the job.
const workerEnv = { JOB_LOCK_MS: '4000', JOB_STALLED_CHECK_MS: '1000', JOB_MAX_STALLS: '1' };
let cluster: Cluster;
let bull: ReturnType<typeof openQueue>;

before(async () => {
  cluster = await startCluster(workerEnv);
  bull = openQueue(cluster.prefix);
});

after(async () => {
  await bull?.close();
  await cluster?.close();
});

const json = (path: string, init?: RequestInit) => cluster.json(path, init);
const postJob = (params: object) => json('/v1/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
const logs = () => cluster.logs();
const view = async (id: string) => (await json(`/v1/jobs/${id}`)).body;

async function waitForJob(id: string, what: string, ok: (job: { state: string; history: { epoch: number }[] }) => boolean, timeoutMs: number) {
  return waitFor(`job ${id}: ${what}`, async () => {
    const job = await view(id);
    return ok(job) ? job : undefined;
  }, timeoutMs).catch((err) => {
    throw new Error(`${err.message}\n${logs()}`);
  });
}

/** The live worker process BullMQ says runs the job. */
async function runnerOf(id: string): Promise<WorkerProc | undefined> {
  const job = await bull.queue.getJob(id);
  return cluster.workers.find((w) => w.child.exitCode === null && w.child.signalCode === null && job?.processedBy === `${hostname()}:${w.child.pid}`);
}

/** Replaces a crashed worker by a fresh one (a restarted container). */
async function restart(dead: WorkerProc): Promise<WorkerProc> {
  const fresh = startWorkerProcess(`${dead.name}'`, cluster.workerEnv);
  cluster.workers[cluster.workers.indexOf(dead)] = fresh;
  await workerReady(fresh);
  return fresh;
}

const checkpointFiles = async () => (await readdir(join(cluster.modelsDir, '.checkpoints')).catch(() => [] as string[])).filter((n) => !n.startsWith('.tmp-'));

test('a worker SIGKILLed mid-training: another resumes the job from its last epoch checkpoint, and it ends with exactly one version', async () => {
  const { body: job } = await postJob({ type: 'train', limit: 2000, epochs: 4, batchSize: 64, learningRate: 0.002, learningRateSchedule: 'constant', seed: 21 });
  await waitForJob(job.id, 'epoch 2 done', (j) => j.history.length >= 2, 120_000);
  const victim = (await runnerOf(job.id))!;
  assert.ok(victim, 'a worker runs the job');
  const [trainer] = victim.trainers();
  assert.ok(trainer, 'the job trains in a child process of the worker');
  await victim.crash();
  await waitFor('its training process to die with it', async () => !isAlive(trainer), 5000);
  const survivor = cluster.workers.find((w) => w !== victim)!;

  // The job is found stalled and taken over by the other worker, within seconds.
  const tookOver = Date.now();
  await waitFor('the other worker to take the job over', async () => (await runnerOf(job.id)) === survivor, 30_000).catch((err) => {
    throw new Error(`${err.message}\n${logs()}`);
  });
  assert.ok(Date.now() - tookOver < 20_000, `taken over ${Date.now() - tookOver} ms after the crash`);
  const restarted = restart(victim); // meanwhile, as a supervisor would

  const done = await waitForJob(job.id, 'finished', (j) => ['succeeded', 'failed', 'cancelled'].includes(j.state), 120_000);
  assert.equal(done.state, 'succeeded', `${done.error}\n${logs()}`);
  assert.ok(done.resumedFromEpoch >= 2, `resumed from epoch ${done.resumedFromEpoch}, not from the start`);
  assert.deepEqual(done.history.map((h: { epoch: number }) => h.epoch), [1, 2, 3, 4], 'every epoch once: none repeated, none lost');
  assert.match(survivor.output(), /resuming from the checkpoint/);
  const bullJob = (await bull.queue.getJob(job.id))!;
  assert.equal(bullJob.stalledCounter, 1);

  assert.equal(done.modelVersion, 1);
  assert.deepEqual((await readdir(cluster.modelsDir)).filter((n) => !n.startsWith('.')), ['1'], 'exactly one new version');
  assert.equal((await json('/v1/models/1')).body.jobId, job.id);
  assert.ok(done.metrics.testAccuracy > 0.8, `test accuracy ${done.metrics.testAccuracy}`);
  assert.deepEqual(await checkpointFiles(), [], 'the checkpoint is removed once the version is written');
  await restarted;
});

test('a job whose worker keeps crashing ends failed with the reason, and writes no version', async () => {
  for (const w of [...cluster.workers]) if (w.child.exitCode !== null || w.child.signalCode !== null) await restart(w);
  const { body: job } = await postJob({ type: 'train', limit: 2000, epochs: 30, batchSize: 64, seed: 22 });
  for (let crash = 1; crash <= 2; crash++) {
    await waitForJob(job.id, `training (attempt ${crash})`, (j) => j.state === 'running' && j.history.length >= 1, 120_000);
    const victim = (await waitFor('a worker to run the job', () => runnerOf(job.id), 10_000))!;
    await victim.crash();
    if (crash === 1) await restart(victim); // the second crash leaves the restarted one to find the job dead twice
  }
  const done = await waitForJob(job.id, 'finished', (j) => ['succeeded', 'failed', 'cancelled'].includes(j.state), 60_000);
  assert.equal(done.state, 'failed');
  assert.match(done.error, /worker crashed 2 times .*JOB_MAX_STALLS=1/);
  assert.deepEqual((await readdir(cluster.modelsDir)).filter((n) => !n.startsWith('.')), ['1'], 'no version from the failed job');
  assert.deepEqual(await checkpointFiles(), [], 'a job failed for good keeps no checkpoint');
});

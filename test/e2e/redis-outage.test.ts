import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ModelStore } from '../../src/store/model-store.ts';
import { waitFor } from '../helpers/env.ts';
import { freePort, startProcess, type Proc } from '../helpers/processes.ts';
import { RedisServer } from '../helpers/redis-server.ts';
import { writeUntrainedVersion } from '../helpers/serving.ts';

// Redis goes away under a running API and worker (a redis-server of this test's own, killed and
// started again on the same port, empty): predict goes on from the loaded model, the job endpoints
// answer 503 with Retry-After, quickly, and everything works again once Redis is back, no restarts.

/** Longest any request may take while Redis is down: a client connection's command timeout plus margin. */
const OUTAGE_ANSWER_MS = 4000;

let redis: RedisServer;
let base = '';
let dir = '';
const procs: { api?: Proc; worker?: Proc } = {};
let apiLog = ''; // all of it: Proc.output() keeps only the tail
const logs = () => `--- api ---\n${procs.api?.output()}\n--- worker ---\n${procs.worker?.output()}\n--- redis ---\n${redis?.output()}`;

before(async () => {
  redis = await RedisServer.start();
  dir = await mkdtemp(join(tmpdir(), 'mnist-outage-'));
  const modelsDir = join(dir, 'models');
  await writeUntrainedVersion(new ModelStore(modelsDir), 1);
  const port = await freePort();
  const env = {
    REDIS_URL: redis.url,
    QUEUE_PREFIX: `outage-${randomUUID().slice(0, 8)}`,
    MODELS_DIR: modelsDir,
    DATASETS_DIR: join(dir, 'datasets'),
    TF_BACKEND: 'wasm',
    LOG_LEVEL: 'info',
    PORT: String(port),
    HOST: '127.0.0.1',
    MODEL_POLL_MS: '1000',
  };
  procs.worker = startProcess('src/worker.ts', env);
  procs.api = startProcess('src/api.ts', env);
  procs.api.child.stdout!.on('data', (c: Buffer) => (apiLog += c.toString()));
  base = `http://127.0.0.1:${port}`;
  await waitFor('the API to be ready with version 1 loaded', () => fetch(`${base}/readyz`).then((r) => r.json(), () => undefined).then((b) => b?.servedVersion === 1), 60_000).catch(
    (err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    },
  );
  await waitFor('the worker to be ready', async () => procs.worker!.output().includes('worker ready'), 60_000);
});

after(async () => {
  await Promise.all([procs.api?.stop(), procs.worker?.stop()]);
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Headers;
  body: { [key: string]: unknown };
  ms: number;
}

/** A request that must be answered within OUTAGE_ANSWER_MS (it is aborted a little after that). */
async function call(path: string, init: RequestInit = {}): Promise<Answer> {
  const started = Date.now();
  const res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(OUTAGE_ANSWER_MS + 2000) });
  const text = await res.text();
  let body: Answer['body'];
  try {
    body = JSON.parse(text) as Answer['body'];
  } catch {
    body = { text };
  }
  return { status: res.status, headers: res.headers, body, ms: Date.now() - started };
}

/** A "1": a vertical stroke in a 28×28 white-on-black image. */
const ONE = Array.from({ length: 784 }, (_, i) => (i % 28 >= 13 && i % 28 <= 14 && i >= 4 * 28 && i < 24 * 28 ? 255 : 0));
const predict = () => call('/v1/predict', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pixels: [ONE] }) });
const postJob = (params: object) => call('/v1/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
const SMALL_JOB = { type: 'train', limit: 100, epochs: 1, batchSize: 50, seed: 1 };

function assertUnavailable(what: string, res: Answer) {
  assert.equal(res.status, 503, `${what}: ${JSON.stringify(res.body)}`);
  assert.ok(Number(res.headers.get('retry-after')) > 0, `${what}: Retry-After is ${res.headers.get('retry-after')}`);
  assert.ok(res.ms < OUTAGE_ANSWER_MS, `${what} took ${res.ms} ms`);
}

test('with Redis up, predict and the job endpoints answer', async () => {
  const p = await predict();
  assert.equal(p.status, 200, JSON.stringify(p.body));
  assert.equal(p.body.modelVersion, 1);
  assert.equal((await call('/v1/jobs')).status, 200);
});

test('while Redis is down: predict 200, job endpoints and /readyz 503 with Retry-After, nothing hangs', async () => {
  await redis.kill();
  // At once, while the connections are still noticing, and again once they have been reconnecting for a while.
  for (const round of ['just after the kill', 'after 3 s of outage']) {
    if (round !== 'just after the kill') await new Promise((r) => setTimeout(r, 3000));
    for (let i = 0; i < 3; i++) {
      const p = await predict();
      assert.equal(p.status, 200, `${round}: predict ${JSON.stringify(p.body)}\n${logs()}`);
      assert.equal(p.body.modelVersion, 1);
      assert.ok(p.ms < OUTAGE_ANSWER_MS, `predict took ${p.ms} ms`);
    }
    assertUnavailable(`${round}: GET /v1/jobs`, await call('/v1/jobs'));
    assertUnavailable(`${round}: POST /v1/jobs`, await postJob(SMALL_JOB));
    assertUnavailable(`${round}: GET /v1/jobs/{id}`, await call(`/v1/jobs/${randomUUID()}`));
    assertUnavailable(`${round}: DELETE /v1/jobs/{id}`, await call(`/v1/jobs/${randomUUID()}`, { method: 'DELETE' }));
    assertUnavailable(`${round}: GET /v1/jobs/{id}/events`, await call(`/v1/jobs/${randomUUID()}/events`));

    const ready = await call('/readyz');
    assertUnavailable(`${round}: /readyz`, ready);
    assert.deepEqual(ready.body, { status: 'unavailable', redis: false, modelLoaded: true, servedVersion: 1 });
    assert.equal((await call('/healthz')).status, 200);
    const metrics = await call('/metrics');
    assert.equal(metrics.status, 200, 'a scrape still works, without the job counts');
    assert.ok(metrics.ms < OUTAGE_ANSWER_MS);
    assert.equal((await call('/v1/models')).status, 200, 'the model list comes from the models directory');
  }
  assert.equal(procs.api!.child.exitCode, null, `the API is still running\n${logs()}`);
  assert.equal(procs.worker!.child.exitCode, null, `the worker is still running\n${logs()}`);
});

test('when Redis is back, jobs work again without restarting anything', async () => {
  await redis.restart();
  await waitFor('/readyz to say ready', () => call('/readyz').then((r) => r.status === 200, () => false), 20_000);
  const created = await postJob(SMALL_JOB);
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = created.body.id as string;
  const done = await waitFor(
    `job ${id} to finish`,
    async () => {
      const { body } = await call(`/v1/jobs/${id}`);
      return ['succeeded', 'failed', 'cancelled'].includes(body.state as string) ? body : undefined;
    },
    180_000,
    500,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${logs()}`);
  });
  assert.equal(done.state, 'succeeded', `${String(done.error)}\n${logs()}`);
  const list = await call('/v1/jobs');
  assert.deepEqual((list.body.items as { id: string }[]).map((j) => j.id), [id]);
  const p = await predict();
  assert.equal(p.status, 200);

  // The same processes throughout, and they told the operator what happened, once each way.
  assert.equal(procs.api!.child.exitCode, null);
  assert.equal(procs.worker!.child.exitCode, null);
  const lost = apiLog.split('\n').filter((l) => l.includes('Redis connection lost'));
  assert.ok(lost.length > 0 && lost.length <= 4, `one "connection lost" line per connection, not one per reconnect attempt:\n${lost.join('\n')}`);
  assert.match(apiLog, /Redis connection restored/);
  assert.doesNotMatch(procs.api!.output(), /unhandled|uncaught/i);
});

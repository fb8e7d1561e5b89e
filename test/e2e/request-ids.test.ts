import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { processEnv, testConfig, waitFor } from '../helpers/env.ts';
import { freePort, startProcess, type Proc } from '../helpers/processes.ts';

// One id follows a job from the HTTP request that queued it to the worker that trains it: the
// caller's X-Request-Id (or one the API makes) is on the API's log lines, in the response, and on
// every worker log line about the job, next to its jobId. Real processes, JSON log lines.

type LogLine = { msg?: string; jobId?: string; requestId?: string; name?: string; [key: string]: unknown };

let base = '';
const procs: Proc[] = [];
const captured = { api: '', worker: '' };
let cleanup = async () => {};

/** Every JSON line a process wrote to stdout so far (pino), the rest ignored. */
function lines(text: string): LogLine[] {
  return text.split('\n').flatMap((l) => {
    try {
      const v = JSON.parse(l) as unknown;
      return v && typeof v === 'object' ? [v as LogLine] : [];
    } catch {
      return [];
    }
  });
}

before(async () => {
  const { config, cleanup: clean } = await testConfig();
  cleanup = clean;
  const port = await freePort();
  const env = processEnv(config, port);
  const worker = startProcess('src/worker.ts', env);
  const api = startProcess('src/api.ts', env);
  procs.push(worker, api);
  // All of it, not only the tail that Proc.output() keeps.
  worker.child.stdout!.on('data', (c: Buffer) => (captured.worker += c.toString()));
  api.child.stdout!.on('data', (c: Buffer) => (captured.api += c.toString()));
  base = `http://127.0.0.1:${port}`;
  await waitFor('the API to be ready', () => fetch(`${base}/readyz`).then((r) => r.ok, () => false), 60_000);
  await waitFor('the worker to be ready', async () => captured.worker.includes('worker ready'), 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${worker.output()}`);
  });
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await cleanup();
});

test("a job's request id is on the API's enqueue line and on every worker line about the job", async () => {
  const requestId = `e2e-${randomUUID()}`;
  const res = await fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify({ type: 'train', limit: 100, epochs: 1, batchSize: 50, seed: 2 }),
  });
  assert.equal(res.status, 202);
  assert.equal(res.headers.get('x-request-id'), requestId, 'the caller gets its id back');
  const job = (await res.json()) as { id: string; params: Record<string, unknown> };
  assert.ok(!('requestId' in job.params), 'the id is not one of the job params');

  const done = await waitFor(
    `job ${job.id} to finish`,
    async () => {
      const view = (await fetch(`${base}/v1/jobs/${job.id}`).then((r) => r.json())) as { state: string; error?: string; params: object };
      return ['succeeded', 'failed', 'cancelled'].includes(view.state) ? view : undefined;
    },
    180_000,
    500,
  );
  assert.equal(done.state, 'succeeded', done.error);
  assert.ok(!('requestId' in done.params));
  await waitFor('the worker to log the job as done', async () => lines(captured.worker).some((l) => l.jobId === job.id && l.msg === 'job succeeded'), 5000);

  const queued = lines(captured.api).filter((l) => l.msg === 'job queued');
  assert.equal(queued.length, 1, captured.api);
  assert.deepEqual({ jobId: queued[0].jobId, requestId: queued[0].requestId }, { jobId: job.id, requestId });
  assert.ok(
    lines(captured.api).some((l) => l.msg === 'request completed' && l.requestId === requestId),
    "Fastify's own request lines use the same key",
  );

  const workerLines = lines(captured.worker).filter((l) => l.jobId === job.id);
  const messages = workerLines.map((l) => l.msg);
  for (const msg of ['training started', 'epoch finished', 'model version written', 'job succeeded']) assert.ok(messages.includes(msg), `worker logged "${msg}": ${messages.join(' | ')}`);
  for (const l of workerLines) assert.equal(l.requestId, requestId, `worker line "${l.msg}" carries the request id`);
});

test('without a usable X-Request-Id the API makes one, and returns it', async () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const none = await fetch(`${base}/healthz`);
  assert.match(none.headers.get('x-request-id') ?? '', uuid);
  const other = await fetch(`${base}/healthz`);
  assert.notEqual(other.headers.get('x-request-id'), none.headers.get('x-request-id'));
  for (const bad of ['x'.repeat(129), 'has space']) {
    const res = await fetch(`${base}/healthz`, { headers: { 'x-request-id': bad } });
    assert.match(res.headers.get('x-request-id') ?? '', uuid, `"${bad.slice(0, 20)}…" is replaced`);
  }
  const notFound = await fetch(`${base}/no-such-route`, { headers: { 'x-request-id': 'abc-123' } });
  assert.equal(notFound.status, 404);
  assert.equal(notFound.headers.get('x-request-id'), 'abc-123', 'errors carry it too');
});

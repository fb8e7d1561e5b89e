import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openapiSpec } from '../../src/api/openapi-spec.ts';
import { jobUpdates } from '../../src/api/job-event-stream.ts';
import type { JobView } from '../../src/schemas/jobs.ts';
import { trainingWorker } from '../../src/queue/queues.ts';
import { createRedis } from '../../src/redis/connection.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { createApi } from '../../src/api/start-api.ts';
import { createLogger } from '../../src/logger.ts';
import { testConfig } from '../helpers/env.ts';

let api: TestApi;
let base = '';
before(async () => {
  api = await startTestApi();
  await api.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = api.app.server.address() as { port: number };
  base = `http://127.0.0.1:${port}`;
});
after(() => api.close());

interface SseMessage {
  event: string;
  data: any;
}

/** Reads a server-sent event stream until the server closes it (or the timeout), like EventSource would. */
async function readEvents(path: string, onEvent: (e: SseMessage) => void = () => {}, timeoutMs = 10_000) {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  const events: SseMessage[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body!) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) {
        const message = { event, data: JSON.parse(data) };
        events.push(message);
        onEvent(message);
      }
    }
  }
  return { status: res.status, headers: res.headers, events };
}

const postJob = async () => (await api.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'train', epochs: 2, limit: 100 } })).json() as JobView;

const batch = (epoch: number, batch: number) => ({ epoch, epochs: 2, batch, batches: 2, loss: 1 / (epoch * 2 + batch), accuracy: 0.4 + 0.1 * (epoch * 2 + batch - 3) });
const epochStats = (epoch: number) => ({ epoch, loss: 1 / epoch, accuracy: 0.5 + epoch / 10 });

describe('GET /v1/jobs/{id}/events', () => {
  test('is documented in OpenAPI as a text/event-stream', async () => {
    const spec = (await openapiSpec()) as { paths: Record<string, Record<string, { responses: Record<string, { content?: object }> }>> };
    const responses = spec.paths['/v1/jobs/{id}/events'].get.responses;
    assert.deepEqual(Object.keys(responses['200'].content ?? {}), ['text/event-stream']);
    assert.ok(responses['404']);
  });

  test('an unknown job is 404 with the error shape', async () => {
    const res = await api.app.inject({ url: '/v1/jobs/nope/events' });
    assert.equal(res.statusCode, 404);
    assert.match(res.json().message, /nope/);
  });

  test('streams a job from queued through every reported batch and epoch to succeeded, then ends', async () => {
    const job = await postJob();
    const connection = createRedis(api.config.REDIS_URL, 'worker');
    let worker: ReturnType<typeof trainingWorker> | undefined;
    try {
      const streamed = readEvents(`/v1/jobs/${job.id}/events`, (e) => {
        // Only start "training" once the client is listening, so it must see every step live.
        if (e.event === 'job' && !worker) {
          worker = trainingWorker(async (j) => {
            const history: object[] = [];
            for (const [e, b] of [[1, 1], [1, 2], [2, 1], [2, 2]]) {
              await new Promise((r) => setTimeout(r, 60));
              if (b === 2) history.push(epochStats(e));
              await j.updateProgress({ progress: batch(e, b), history: [...history] });
            }
            return { modelVersion: 7, metrics: { testAccuracy: 0.9, testLoss: 0.3 } };
          }, { connection, prefix: api.config.QUEUE_PREFIX });
        }
      });
      const { status, headers, events } = await streamed;
      assert.equal(status, 200);
      assert.match(headers.get('content-type')!, /^text\/event-stream/);
      assert.equal(headers.get('cache-control'), 'no-cache, no-transform');

      assert.equal(events[0].event, 'job');
      assert.equal(events[0].data.state, 'queued');
      const states = events.filter((e) => e.event === 'state').map((e) => e.data.state);
      assert.deepEqual(states, ['running', 'succeeded']);
      assert.deepEqual(events.filter((e) => e.event === 'progress').map((e) => [e.data.epoch, e.data.batch]), [[1, 1], [1, 2], [2, 1], [2, 2]], 'every batch the worker reported, in order');
      assert.deepEqual(events.filter((e) => e.event === 'epoch').map((e) => e.data), [epochStats(1), epochStats(2)]);
      const done = events.find((e) => e.event === 'state' && e.data.state === 'succeeded')!;
      assert.equal(done.data.modelVersion, 7);
      assert.deepEqual(events.at(-1), { event: 'end', data: { id: job.id, state: 'succeeded' } });
      // As they happened: an epoch's last batch, then the epoch.
      const order = events.filter((e) => e.event === 'progress' || e.event === 'epoch').map((e) => (e.event === 'epoch' ? `e${e.data.epoch}` : `b${e.data.epoch}.${e.data.batch}`));
      assert.deepEqual(order, ['b1.1', 'b1.2', 'e1', 'b2.1', 'b2.2', 'e2']);
    } finally {
      await worker?.close();
      connection.disconnect();
    }
  });

  test('a queued job cancelled while watched ends the stream with state cancelled (no BullMQ event for that)', async () => {
    const job = await postJob();
    const streamed = readEvents(`/v1/jobs/${job.id}/events`, (e) => {
      if (e.event === 'job') void api.app.inject({ method: 'DELETE', url: `/v1/jobs/${job.id}` });
    });
    const { events } = await streamed;
    assert.deepEqual(events.map((e) => e.event), ['job', 'state', 'end']);
    assert.equal(events[1].data.state, 'cancelled');
  });

  test('a finished job gets its snapshot and the end at once', async () => {
    const job = await postJob();
    await api.app.inject({ method: 'DELETE', url: `/v1/jobs/${job.id}` });
    const started = Date.now();
    const { events } = await readEvents(`/v1/jobs/${job.id}/events`);
    assert.deepEqual(events.map((e) => [e.event, e.data.state]), [['job', 'cancelled'], ['end', 'cancelled']]);
    assert.ok(Date.now() - started < 1000);
  });

  test('closing the app drops open streams instead of waiting for them, without `end` so clients reconnect elsewhere', async () => {
    const other = await startTestApi();
    try {
      await other.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = other.app.server.address() as { port: number };
      const { id } = (await other.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'train' } })).json();
      const res = await fetch(`http://127.0.0.1:${port}/v1/jobs/${id}/events`);
      const reader = res.body!.getReader();
      let text = '';
      while (!text.includes('event: job')) text += new TextDecoder().decode((await reader.read()).value);
      const started = Date.now();
      await other.app.close();
      assert.ok(Date.now() - started < 3000, `close took ${Date.now() - started} ms`);
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += new TextDecoder().decode(chunk.value);
      assert.doesNotMatch(text, /event: end/);
    } finally {
      await other.close();
    }
  });
});

test('past MAX_EVENT_STREAMS open streams a client gets 503 with Retry-After, and a slot frees when a stream closes', async () => {
  const capped = await startTestApi({ MAX_EVENT_STREAMS: '1' });
  try {
    await capped.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = capped.app.server.address() as { port: number };
    const { id } = (await capped.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'train' } })).json();
    const url = `http://127.0.0.1:${port}/v1/jobs/${id}/events`;
    const first = new AbortController();
    const open = await fetch(url, { signal: first.signal });
    assert.equal(open.status, 200);
    const reader = open.body!.getReader();
    await reader.read(); // the stream is registered once its first bytes are out

    const refused = await fetch(url);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '10');
    assert.match((await refused.json()).message, /MAX_EVENT_STREAMS/);

    first.abort();
    await reader.cancel().catch(() => undefined);
    let again: Response | undefined;
    for (let i = 0; i < 50 && again?.status !== 200; i++) {
      await again?.body?.cancel();
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      again = await fetch(url);
    }
    assert.equal(again?.status, 200, 'a closed stream frees its slot');
    await again!.body!.cancel();
  } finally {
    await capped.close();
  }
});

test('a burst of stream requests over MAX_EVENT_STREAMS opens exactly the cap; the rest get 503, logged below error level', async () => {
  const CAP = 5;
  const { config, cleanup } = await testConfig({ MAX_EVENT_STREAMS: String(CAP) });
  const lines: string[] = [];
  const capped = await createApi(config, createLogger('api', 'info', { write: (line: string) => void lines.push(line) }));
  const aborts: AbortController[] = [];
  try {
    await capped.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = capped.app.server.address() as { port: number };
    const { id } = (await capped.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'train' } })).json();
    const open = (path: string) => {
      const abort = new AbortController();
      aborts.push(abort);
      return fetch(`http://127.0.0.1:${port}${path}`, { signal: abort.signal });
    };
    // Requests for jobs that do not exist take a slot while they look, and must give it back.
    const missing = await Promise.all(Array.from({ length: 10 }, (_, i) => open(`/v1/jobs/nope-${i}/events`)));
    assert.deepEqual(missing.map((r) => r.status), Array(10).fill(404));
    for (const r of missing) await r.body?.cancel();

    const answers = await Promise.all(Array.from({ length: 30 }, () => open(`/v1/jobs/${id}/events`)));
    const statuses = answers.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, CAP, `statuses: ${statuses.join(' ')}`);
    assert.equal(statuses.filter((s) => s === 503).length, 30 - CAP);
    for (const r of answers) if (r.status !== 200) await r.body?.cancel();

    // Every stream closed: the cap is free again, 404s included.
    for (const a of aborts) a.abort();
    let again: Response | undefined;
    for (let i = 0; i < 50 && again?.status !== 200; i++) {
      await again?.body?.cancel();
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      again = await open(`/v1/jobs/${id}/events`);
    }
    assert.equal(again?.status, 200, 'the slots came back');
    const opened = await Promise.all(Array.from({ length: CAP - 1 }, () => open(`/v1/jobs/${id}/events`)));
    assert.deepEqual(opened.map((r) => r.status), Array(CAP - 1).fill(200), 'all five slots came back');

    const errors = lines.filter((l) => JSON.parse(l).level >= 50);
    assert.deepEqual(errors, [], 'a refused stream is not an error');
  } finally {
    for (const a of aborts) a.abort();
    await capped.close();
    await cleanup();
  }
});

describe('jobUpdates', () => {
  const view = (over: Partial<JobView>): JobView => ({ id: 'j', type: 'train', state: 'running', params: {} as JobView['params'], progress: null, history: [], createdAt: '2024-01-01T00:00:00.000Z', ...over });

  test('the first view is the snapshot', () => {
    assert.deepEqual(jobUpdates(undefined, view({})).events.map((e) => e.event), ['job']);
  });

  test('a stale read never takes progress backwards, but its state still counts', () => {
    const prev = view({ progress: batch(2, 1), history: [epochStats(1)] });
    const { events, view: next } = jobUpdates(prev, view({ state: 'failed', progress: batch(1, 2), history: [] }));
    assert.deepEqual(events.map((e) => e.event), ['state']);
    assert.deepEqual(next.progress, batch(2, 1));
    assert.equal(next.state, 'failed');
  });

  test('an unchanged view sends nothing', () => {
    const v = view({ progress: batch(1, 1) });
    assert.deepEqual(jobUpdates(v, structuredClone(v)).events, []);
  });
});

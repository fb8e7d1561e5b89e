/**
 * `npm run bench:hostile`: one hostile client at a time against a real API process and worker, and
 * what the API's event loop and memory do meanwhile.
 *
 * Starts `src/api.ts` and `src/worker.ts` (as `npm run start:api` / `start:worker` do) on a fresh
 * models directory with a trained model, then runs each case of issue #9's probe while a second
 * client, on a thread of its own, asks GET /healthz every 20 ms. For every case it prints the
 * answers' statuses, the /healthz latency (p50, p99, max; goal p99 ≤ 100 ms), and the API's resident
 * memory before and after (goal: back within 50 MB once the load is gone; read until it is, for up
 * to 20 s). Exits 1 on any 5xx, on a /healthz p99 over 100 ms, or on memory that stayed more than
 * 50 MB up. *
 *   npm run bench:hostile [-- --only png,zip]
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import { ModelStore } from '../src/store/model-store.ts';
import { writeFixtureVersion } from '../test/helpers/fixture-model.ts';
import { buildPng, encodeGrayPng } from '../test/helpers/png.ts';
import { healthProbe } from '../test/helpers/health-probe.ts';
import { freePort, startProcess, type Proc } from '../test/helpers/processes.ts';
import { makeZip } from '../test/helpers/zip.ts';
import { multipart } from '../test/helpers/multipart.ts';

const { values: args } = parseArgs({ options: { only: { type: 'string' } } });
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const HEALTH_P99_GOAL_MS = 100;
const RSS_GOAL_MB = 50;

/** A grey PNG of side × side pixels that compresses to a few kilobytes and takes seconds to decode and preprocess. */
function bigPng(side: number): Buffer {
  const row = Buffer.alloc(side + 1); // filter byte 0, then black pixels with a white stripe: some ink to find
  row.fill(255, 1 + Math.floor(side / 3), 1 + Math.floor(side / 2));
  const raw = Buffer.concat(Array.from({ length: side }, () => row));
  return buildPng({ width: side, height: side, deflated: deflateSync(raw, { level: 9 }) });
}

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;

interface Case {
  name: string;
  run: (origin: string) => Promise<number[]>;
}

/** Statuses of `n` concurrent fetches. */
async function many(n: number, make: () => Promise<Response>): Promise<number[]> {
  return Promise.all(Array.from({ length: n }, () => make().then(async (r) => (await r.arrayBuffer(), r.status), () => 0)));
}

/** Writes a whole raw HTTP request before reading, as Python's requests does; the status line it then reads (0 = reset). */
function writeAllThenRead(port: number, head: string, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
    socket.write(head);
    socket.write(body, () => socket.end());
  });
}

/** Sends a raw HTTP request in chunks while reading, as curl does; the status line that came back (0 = none before a reset). */
function sendWhileReading(port: number, head: string, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    const done = () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0));
    socket.on('data', (d) => {
      answer += d.toString('latin1');
      if (/^HTTP\/1\.1 \d{3}/.test(answer)) socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', done);
    socket.write(head);
    let at = 0;
    const pump = () => {
      while (at < body.length && !socket.destroyed) {
        const chunk = body.subarray(at, (at += 64 * 1024));
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
}

function cases(port: number): Case[] {
  const png4000 = bigPng(4000);
  const json = (url: string, body: unknown) => (origin: string) => fetch(`${origin}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return [
    { name: 'png: one 4000×4000 PNG (allowed), 4 clients at once', run: (o) => many(4, () => fetch(`${o}/v1/predict`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(png4000) })) },
    { name: 'png: 16 × 4000×4000 in one JSON body (over PREDICT_MAX_PIXELS)', run: (o) => many(2, () => json('/v1/predict', { images: Array(16).fill(png4000.toString('base64')) })(o)) },
    { name: 'zip: 8 × 4000×4000 PNGs to /v1/datasets (allowed)', run: (o) => many(1, () => fetch(`${o}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/zip' }, body: new Uint8Array(makeZip(Array.from({ length: 8 }, (_, i) => ({ name: `${i % 10}/${i}.png`, data: png4000 })))) })) },
    { name: 'zip: 20 × 4000×4000 PNGs to /v1/datasets (over UPLOAD_MAX_PIXELS)', run: (o) => many(1, () => fetch(`${o}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/zip' }, body: new Uint8Array(makeZip(Array.from({ length: 20 }, (_, i) => ({ name: `${i % 10}/${i}.png`, data: png4000 })))) })) },
    {
      name: 'import: a 700-byte model that upsamples 60× (refused by its job)',
      run: async (o) => {
        const topology = { class_name: 'Sequential', config: { name: 'bomb', layers: [
          { class_name: 'UpSampling2D', config: { name: 'up', size: [60, 60], batch_input_shape: [null, 28, 28, 1] } },
          { class_name: 'MaxPooling2D', config: { name: 'pool', pool_size: [2, 2] } },
          { class_name: 'Flatten', config: { name: 'flat' } },
          { class_name: 'Dense', config: { name: 'out', units: 10, activation: 'softmax' } },
        ] } };
        const weights = { paths: ['w.bin'], weights: [{ name: 'out/kernel', shape: [840 * 840, 10], dtype: 'float32' }, { name: 'out/bias', shape: [10], dtype: 'float32' }] };
        const body = multipart([
          { name: 'f', filename: 'model.json', data: JSON.stringify({ modelTopology: topology, weightsManifest: [weights] }) },
          { name: 'f', filename: 'w.bin', data: Buffer.alloc((840 * 840 * 10 + 10) * 4) },
        ]);
        const res = await fetch(`${o}/v1/models`, { method: 'POST', headers: body.headers, body: new Uint8Array(body.payload) });
        const job = (await res.json()) as { id?: string };
        if (!job.id) return [res.status];
        for (;;) {
          const view = (await (await fetch(`${o}/v1/jobs/${job.id}`)).json()) as { state: string };
          if (['succeeded', 'failed', 'cancelled'].includes(view.state)) return [res.status, view.state === 'failed' ? 422 : 200];
          await new Promise((r) => setTimeout(r, 200));
        }
      },
    },
    { name: 'json: 5 MB of [[[…]]] to /v1/predict', run: (o) => many(4, () => fetch(`${o}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '['.repeat(2_500_000) + ']'.repeat(2_500_000) })) },
    { name: 'sse: 1,500 event streams at once (cap MAX_EVENT_STREAMS=500)', run: async (o) => {
      // A job that outlasts the burst, so that no stream ends (and frees its slot) while it is counted.
      const { id } = (await (await json('/v1/jobs', { type: 'train' })(o)).json()) as { id: string };
      const controllers: AbortController[] = [];
      const statuses = await Promise.all(Array.from({ length: 1500 }, async () => {
        const c = new AbortController();
        controllers.push(c);
        return fetch(`${o}/v1/jobs/${id}/events`, { signal: c.signal }).then((r) => r.status, () => 0);
      }));
      controllers.forEach((c) => c.abort());
      await fetch(`${o}/v1/jobs/${id}`, { method: 'DELETE' });
      const ok = statuses.filter((s) => s === 200).length;
      if (ok > 500) throw new Error(`${ok} streams opened past the cap of 500`);
      return statuses;
    } },
    { name: 'multipart: 40 files of 5 MB to /v1/predict (over BODY_LIMIT_BYTES), read while sending as curl does', run: async () => {
      const body = multipart(Array.from({ length: 40 }, (_, i) => ({ name: `f${i}`, filename: `${i}.png`, data: Buffer.alloc(5 * 2 ** 20) })));
      const head = `POST /v1/predict HTTP/1.1\r\nHost: x\r\n${Object.entries(body.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}Content-Length: ${body.payload.length}\r\n\r\n`;
      return [await sendWhileReading(port, head, body.payload)];
    } },
    { name: 'over-limit: 20 MB written whole before reading', run: async () => [await writeAllThenRead(port, `POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${20 * 2 ** 20}\r\n\r\n`, Buffer.alloc(20 * 2 ** 20))] },
    { name: 'jobs: freeze 1e9, a backwards zoom range, a rate of 1e-320, 200 jobs', run: async (o) => [
      ...(await Promise.all([{ type: 'finetune', baseModel: 1, dataset: 'mnist', freeze: 1e9 }, { type: 'train', augment: { scale: [2, 1] } }, { type: 'train', learningRate: 1e-320 }].map(async (b) => (await json('/v1/jobs', b)(o)).status))),
      ...(await many(200, () => json('/v1/jobs', { type: 'train', limit: 100, epochs: 200, batchSize: 1 })(o))),
    ] },
    { name: "ids: BullMQ's own keys as job ids", run: (o) => Promise.all(['meta', 'id', 'events', 'completed', 'stalled-check'].map(async (id) => (await fetch(`${o}/v1/jobs/${id}`, { method: 'DELETE' })).status)) },
  ];
}

/** The API's resident memory once it is back within the goal of `before`, or after 20 s: what it settled at, and when. */
async function settledRss(pid: number, before: number): Promise<{ mb: number; seconds: number }> {
  const started = performance.now();
  let mb = rssMb(pid);
  while (mb - before > RSS_GOAL_MB && performance.now() - started < 20_000) {
    await new Promise((r) => setTimeout(r, 500));
    mb = rssMb(pid);
  }
  return { mb, seconds: (performance.now() - started) / 1000 };
}

const base = await mkdtemp(join(tmpdir(), 'mnist-hostile-'));
const port = await freePort();
const origin = `http://127.0.0.1:${port}`;
const env = {
  PORT: String(port),
  MODELS_DIR: join(base, 'models'),
  DATASETS_DIR: join(base, 'datasets'),
  QUEUE_PREFIX: `hostile-${randomUUID().slice(0, 8)}`,
  REDIS_URL,
  LOG_LEVEL: 'warn',
  TF_BACKEND: 'wasm',
  UPLOAD_MAX_BYTES: String(64 * 2 ** 20),
};
const procs: Proc[] = [];
let failed = false;
try {
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  await writeFixtureVersion(new ModelStore(env.MODELS_DIR));
  procs.push(startProcess('src/api.ts', env), startProcess('src/worker.ts', env));
  for (let i = 0; !(await fetch(`${origin}/readyz`).then((r) => r.ok, () => false)); i++) {
    if (i > 300) throw new Error(`the API did not start:\n${procs[0].output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const pid = procs[0].child.pid!;
  const [digit] = [encodeGrayPng(new Uint8Array(784).fill(0))];
  await fetch(`${origin}/v1/predict`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(digit) }); // warm
  console.log(`\n| case | answers | /healthz p50 / p99 / max (ms) | API RSS before → after (MB) |`);
  console.log('|---|---|---:|---:|');
  for (const c of cases(port)) {
    if (args.only && !args.only.split(',').some((w) => c.name.startsWith(w))) continue;
    const before = rssMb(pid);
    const probe = healthProbe(`${origin}/healthz`);
    await probe.ready;
    const statuses = await c.run(origin).catch((err: Error) => {
      failed = true;
      console.log(`| ${c.name} | ${err.message} | | |`);
      return [] as number[];
    });
    const latencies = await probe.stop();
    const settled = await settledRss(pid, before);
    const after = settled.mb;
    const counts = Object.entries(statuses.reduce<Record<number, number>>((m, s) => ({ ...m, [s]: (m[s] ?? 0) + 1 }), {})).map(([s, n]) => `${n}× ${s === '0' ? 'reset' : s}`).join(', ');
    const p99 = pct(latencies, 99);
    const bad = statuses.some((s) => s >= 500 || s === 0) || p99 > HEALTH_P99_GOAL_MS || after - before > RSS_GOAL_MB;
    if (bad) failed = true;
    console.log(`| ${c.name} | ${counts} | ${pct(latencies, 50).toFixed(1)} / ${p99.toFixed(1)} / ${Math.max(...latencies).toFixed(1)} | ${before.toFixed(0)} → ${after.toFixed(0)}${settled.seconds >= 1 ? ` (after ${settled.seconds.toFixed(0)} s)` : ''}${bad ? ' ✗' : ''} |`);
  }
  console.log(`\n${failed ? 'MISSED' : 'met'}: no 5xx or reset, /healthz p99 ≤ ${HEALTH_P99_GOAL_MS} ms, API memory back within ${RSS_GOAL_MB} MB`);
} finally {
  await Promise.all(procs.map((p) => p.stop()));
  await rm(base, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

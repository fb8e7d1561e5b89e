/**
 * `npm run bench:predict`: how fast /v1/predict answers compared with the HTTP stack alone.
 *
 * Trains a small model, starts the real API (`src/api.ts`, as `npm run start:api` does) on a free
 * port against it, then runs autocannon (50 connections) on POST /v1/predict with a 28×28 PNG and,
 * in the same run against the same server, on GET /healthz. Prints req/s, p50/p99 latency and
 * errors of each, and their ratio. Exits 1 if any request failed.
 *
 *   npm run bench:predict [-- --duration 15 --connections 50]
 *
 * PREDICT_* and other settings in the environment are passed on to the API. autocannon runs in
 * this process, so on a small machine it competes with the API for CPU: the figures are a floor.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { loadMnist } from '../src/data/mnist.ts';
import { ModelStore } from '../src/store/model-store.ts';
import { writeTrainedVersion } from '../test/helpers/model.ts';
import { encodeGrayPng } from '../test/helpers/png.ts';
import { freePort, startProcess } from '../test/helpers/processes.ts';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '3' },
  },
});
const duration = Number(args.duration);
const connections = Number(args.connections);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Row {
  route: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
}

/** Model calls so far, the images they classified and the seconds the model computed, from /metrics. */
function modelCalls(metrics: string): { calls: number; images: number; seconds: number } {
  const sample = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(metrics)?.[1] ?? NaN);
  return { calls: sample('mnist_predict_batch_size_count'), images: sample('mnist_predict_batch_size_sum'), seconds: sample('mnist_predict_model_seconds_sum') };
}

async function run(url: string, opts: Partial<autocannon.Options>, seconds: number, route: string): Promise<Row> {
  const result = await autocannon({ url, connections, duration: seconds, ...opts });
  return {
    route,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    requests: result.requests.total,
  };
}

const base = await mkdtemp(join(tmpdir(), 'mnist-bench-'));
const prefix = `bench-${randomUUID().slice(0, 8)}`;
let api: ReturnType<typeof startProcess> | undefined;
let failed = false;
try {
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  process.stdout.write('training a small model… ');
  const store = new ModelStore(join(base, 'models'));
  const version = await writeTrainedVersion(store);
  console.log(`version ${version}`);

  const port = await freePort();
  api = startProcess('src/api.ts', {
    PORT: String(port),
    MODELS_DIR: store.root,
    DATASETS_DIR: join(base, 'datasets'),
    QUEUE_PREFIX: prefix,
    REDIS_URL,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    TF_BACKEND: process.env.TF_BACKEND ?? 'wasm',
  });
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`${origin}/readyz`).then((r) => r.json() as Promise<{ modelLoaded: boolean }>, () => undefined);
    if (ready?.modelLoaded) break;
    if (Date.now() > deadline || api.child.exitCode !== null) throw new Error(`the API did not get ready:\n${api.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }

  const test = await loadMnist('test');
  const png = encodeGrayPng(test.images.subarray(0, 784));
  const predict = { method: 'POST' as const, headers: { 'content-type': 'image/png' }, body: png };
  const check = await fetch(`${origin}/v1/predict`, { method: 'POST', headers: predict.headers, body: new Uint8Array(png) });
  if (check.status !== 200) throw new Error(`predict answered ${check.status}: ${await check.text()}`);
  console.log(`API on ${origin} serving version ${version}; PNG ${png.length} bytes (MNIST test digit 0, a ${test.labels[0]}); ${connections} connections, ${duration} s each`);

  await run(`${origin}/v1/predict`, predict, Number(args.warmup), 'warm-up');
  const health = await run(`${origin}/healthz`, {}, duration, 'GET /healthz');
  const before = modelCalls(await fetch(`${origin}/metrics`).then((r) => r.text()));
  const pred = await run(`${origin}/v1/predict`, predict, duration, 'POST /v1/predict');
  const after = modelCalls(await fetch(`${origin}/metrics`).then((r) => r.text()));
  const rows = [health, pred];

  console.log('');
  console.log('route              req/s    p50 ms  p99 ms  errors  requests');
  for (const r of rows) {
    console.log(`${r.route.padEnd(17)} ${r.rps.toFixed(0).padStart(6)}  ${String(r.p50).padStart(6)}  ${String(r.p99).padStart(6)}  ${String(r.errors).padStart(6)}  ${String(r.requests).padStart(8)}`);
  }
  console.log(`\npredict / healthz throughput: ${(pred.rps / health.rps).toFixed(2)}  (predictions/s = predict req/s: one image per request)`);
  const calls = after.calls - before.calls;
  const images = after.images - before.images;
  const seconds = after.seconds - before.seconds;
  const threads = Number(process.env.PREDICT_WORKERS ?? 1) || 1;
  console.log(`during the predict run: ${calls} model calls, mean batch ${(images / calls).toFixed(1)} images, ${((seconds / images) * 1e6).toFixed(0)} µs of model time per image`);
  console.log(`the model computed ${seconds.toFixed(1)} s of the ${duration} s: inference threads ${((100 * seconds) / (duration * threads)).toFixed(0)} % busy (${threads} thread${threads > 1 ? 's' : ''})`);
  console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  failed = rows.some((r) => r.errors > 0);
} catch (err) {
  console.error(err);
  failed = true;
} finally {
  await api?.stop();
  await rm(base, { recursive: true, force: true });
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
}
process.exit(failed ? 1 : 0);

/**
 * `npm run bench:predict`: how fast /v1/predict answers compared with the HTTP stack alone, on ONNX
 * Runtime and on TF.js, and where a request's time goes.
 *
 * Trains a small model (the tests' fixture, which has a proven model.onnx), starts the real API
 * (`src/api.ts`, as `npm run start:api` does) on it once per --engines value (INFERENCE_ENGINE:
 * `auto` serves it on ONNX Runtime, `tfjs` on TF.js; the engine is read back from
 * /v1/models/serving and checked against /metrics' `engine` label), then runs autocannon
 * (50 connections) on GET /healthz and on POST /v1/predict with a 28×28 PNG on every API — in
 * alternating rounds, because on a shared 2-core VM one 10 s run can be 15% off the next. Prints
 * req/s, p50/p99 latency and errors of every round, the medians and the ratios of the medians; the
 * model calls (batch size, model time per image and per call, queue wait); and the CPU every party
 * spent per request — the API's event loop, inference and decode threads (per thread, from
 * /proc/<pid>/task/<tid>/schedstat), this process (autocannon), Redis (INFO cpu) and the rest of the
 * machine (/proc/stat) — with the time the event loop was runnable but waiting for a core.
 * --sweep runs predict on the first API at several connection counts, to show where the throughput
 * stops rising and which thread is busy there; --profile adds a pass under V8's CPU profiler that
 * splits the event loop's time by what it did.
 * Exits 1 if any request failed.
 *
 *   npm run bench:predict [-- --rounds 3 --duration 10 --warmup 10 --connections 50 --engines auto,tfjs
 *                             --sweep 1,10,25,50,100,200 --profile --profile-out main.cpuprofile]
 *
 * PREDICT_* and other settings in the environment are passed on to the APIs. autocannon runs in
 * this process, so on a small machine it competes with the API for CPU: the figures are a floor.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { loadMnist } from '../src/data/mnist.ts';
import { ModelStore } from '../src/store/model-store.ts';
import { writeFixtureVersion } from '../test/helpers/fixture-model.ts';
import { encodeGrayPng } from '../test/helpers/png.ts';
import { freePort, nodeArgs, startProcess, type Proc } from '../test/helpers/processes.ts';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    engines: { type: 'string', default: 'auto,tfjs' },
    profile: { type: 'boolean', default: false },
    'profile-out': { type: 'string' },
    sweep: { type: 'string' },
  },
});
const duration = Number(args.duration);
const connections = Number(args.connections);
const rounds = Math.max(1, Number(args.rounds));
const engines = args.engines.split(',').map((e) => e.trim()).filter(Boolean);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The targets of the ONNX Runtime issue, on a 2-core machine, for the served (first) engine. */
const TARGET_RPS = 8000;
const TARGET_P99_MS = 15;
/** Functions listed by self time in the --profile pass. */
const PROFILE_TOP = 25;

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '—');

interface Row {
  route: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
}

// ——— what /metrics says about the model calls ———

type ModelTotals = Record<'calls' | 'images' | 'seconds' | 'requests' | 'queued' | 'answered', number> & { engines: Record<string, number> };

/** The sum of every series of `name`, whatever its labels (`name{engine="onnxruntime"} 1.5`, or `name 1.5`). */
function sumSeries(metrics: string, name: string): number {
  let sum = 0;
  for (const m of metrics.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

/**
 * Totals so far from /metrics: model calls, the images they classified and the seconds the model
 * computed (summed over the `engine` series, and the calls of each engine); the requests that went
 * through the batcher, the seconds they queued there and the seconds until their answer.
 */
function modelTotals(metrics: string): ModelTotals {
  const engines: Record<string, number> = {};
  for (const m of metrics.matchAll(/^mnist_predict_model_seconds_count\{engine="([^"]+)"\} (\S+)$/gm)) engines[m[1]] = Number(m[2]);
  return {
    calls: sumSeries(metrics, 'mnist_predict_batch_size_count'),
    images: sumSeries(metrics, 'mnist_predict_batch_size_sum'),
    seconds: sumSeries(metrics, 'mnist_predict_model_seconds_sum'),
    requests: sumSeries(metrics, 'mnist_predict_queue_seconds_count'),
    queued: sumSeries(metrics, 'mnist_predict_queue_seconds_sum'),
    answered: sumSeries(metrics, 'mnist_predict_request_seconds_sum'),
    engines,
  };
}

function minusTotals(a: ModelTotals, b: ModelTotals): ModelTotals {
  const engines: Record<string, number> = {};
  for (const e of Object.keys(a.engines)) engines[e] = a.engines[e] - (b.engines[e] ?? 0);
  return { calls: a.calls - b.calls, images: a.images - b.images, seconds: a.seconds - b.seconds, requests: a.requests - b.requests, queued: a.queued - b.queued, answered: a.answered - b.answered, engines };
}

function addTotals(a: ModelTotals, b: ModelTotals): ModelTotals {
  const engines = { ...a.engines };
  for (const e of Object.keys(b.engines)) engines[e] = (engines[e] ?? 0) + b.engines[e];
  return { calls: a.calls + b.calls, images: a.images + b.images, seconds: a.seconds + b.seconds, requests: a.requests + b.requests, queued: a.queued + b.queued, answered: a.answered + b.answered, engines };
}

const NO_TOTALS: ModelTotals = { calls: 0, images: 0, seconds: 0, requests: 0, queued: 0, answered: 0, engines: {} };

// ——— who spent the CPU ———

/** The API's threads by what they do: its event loop (the process's first thread), the named pool threads, and V8's and libuv's helpers (GC, compilation, fs). */
type Role = 'main' | 'inference' | 'decode' | 'helpers';
const ROLES: Role[] = ['main', 'inference', 'decode', 'helpers'];
const ROLE_OF: Record<string, Role> = { 'mnist-inference': 'inference', 'mnist-decode': 'decode' };

function readProc(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // the thread is gone
  }
}

/**
 * Per thread of `pid`: nanoseconds on a CPU and nanoseconds runnable but waiting for one
 * (schedstat's first two fields: exact, unlike stat's 10 ms ticks).
 */
function threadTimes(pid: number): Map<number, { role: Role; cpu: number; wait: number }> {
  const out = new Map<number, { role: Role; cpu: number; wait: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`).map(Number)) {
    const [cpu, wait] = readProc(`/proc/${pid}/task/${tid}/schedstat`).split(' ').map(Number);
    if (!Number.isFinite(cpu)) continue;
    const role = tid === pid ? 'main' : (ROLE_OF[readProc(`/proc/${pid}/task/${tid}/comm`).trim()] ?? 'helpers');
    out.set(tid, { role, cpu, wait });
  }
  return out;
}

/** Jiffies of the whole machine (/proc/stat's first line): busy (not idle, not iowait), stolen by the hypervisor, and all. */
function machineTicks(): { busy: number; steal: number; all: number } {
  const f = readProc('/proc/stat').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const all = f.slice(0, 8).reduce((a, b) => a + b, 0); // guest time is counted in user already
  return { busy: all - f[3] - f[4] - f[7], steal: f[7], all };
}

async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  return Number(/used_cpu_user:(\S+)/.exec(info)?.[1]) + Number(/used_cpu_sys:(\S+)/.exec(info)?.[1]);
}

interface Usage {
  at: number;
  threads: Map<number, { role: Role; cpu: number; wait: number }>;
  bench: number;
  redis: number;
  machine: ReturnType<typeof machineTicks>;
}

async function usage(pid: number, redis: Redis): Promise<Usage> {
  const cpu = process.cpuUsage();
  return { at: performance.now(), threads: threadTimes(pid), bench: cpu.user + cpu.system, redis: await redisCpuSeconds(redis), machine: machineTicks() };
}

/** Seconds of CPU over an interval: the API's by thread role, its event loop's wait for a core, this process, Redis, the whole machine. */
interface Spent {
  wall: number;
  api: Record<Role, number>;
  mainWait: number;
  bench: number;
  redis: number;
  machine: number;
  steal: number;
}

function spent(a: Usage, b: Usage): Spent {
  const api = { main: 0, inference: 0, decode: 0, helpers: 0 };
  let mainWait = 0;
  for (const [tid, t] of b.threads) {
    const before = a.threads.get(tid);
    api[t.role] += (t.cpu - (before?.cpu ?? 0)) / 1e9;
    if (t.role === 'main') mainWait += (t.wait - (before?.wait ?? 0)) / 1e9;
  }
  const ticks = (b.machine.all - a.machine.all) / cpus().length; // jiffies per core over the interval
  const seconds = (b.at - a.at) / 1000;
  return {
    wall: seconds,
    api,
    mainWait,
    bench: (b.bench - a.bench) / 1e6,
    redis: b.redis - a.redis,
    machine: ((b.machine.busy - a.machine.busy) / ticks) * seconds,
    steal: ((b.machine.steal - a.machine.steal) / ticks) * seconds,
  };
}

function addSpent(a: Spent, b: Spent): Spent {
  const api = { main: a.api.main + b.api.main, inference: a.api.inference + b.api.inference, decode: a.api.decode + b.api.decode, helpers: a.api.helpers + b.api.helpers };
  return { wall: a.wall + b.wall, api, mainWait: a.mainWait + b.mainWait, bench: a.bench + b.bench, redis: a.redis + b.redis, machine: a.machine + b.machine, steal: a.steal + b.steal };
}

const NO_SPENT: Spent = { wall: 0, api: { main: 0, inference: 0, decode: 0, helpers: 0 }, mainWait: 0, bench: 0, redis: 0, machine: 0, steal: 0 };

// ——— running the load ———

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
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

interface Api {
  /** INFERENCE_ENGINE it runs with. */
  setting: string;
  /** The engine /v1/models/serving says runs the served version. */
  engine: string;
  origin: string;
  proc: Proc;
}

/**
 * startProcess's API with node flags before the entry: --cpu-prof may not go in NODE_OPTIONS. Its
 * output is dropped; it stops as startProcess's does (SIGTERM, and the API drains and exits).
 */
function startWithFlags(flags: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [...flags, ...nodeArgs('src/api.ts')], { cwd: fileURLToPath(new URL('../', import.meta.url)), env: { ...process.env, ...env }, stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  return { child, output: () => '(not kept)', stop: async () => void (child.exitCode === null && child.kill('SIGTERM'), await exited) };
}

async function startApi(setting: string, env: Record<string, string>, flags: string[] = []): Promise<Api> {
  const port = await freePort();
  const apiEnv = { ...env, PORT: String(port), INFERENCE_ENGINE: setting };
  const proc = flags.length ? startWithFlags(flags, apiEnv) : startProcess('src/api.ts', apiEnv);
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`${origin}/readyz`).then((r) => r.json() as Promise<{ modelLoaded: boolean }>, () => undefined);
    if (ready?.modelLoaded) break;
    if (Date.now() > deadline || proc.child.exitCode !== null) throw new Error(`the API (INFERENCE_ENGINE=${setting}) did not get ready:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const serving = (await (await fetch(`${origin}/v1/models/serving`)).json()) as { servedVersion: number; loaded: { version: number; engine: string }[] };
  const engine = serving.loaded.find((l) => l.version === serving.servedVersion)?.engine ?? 'unknown';
  return { setting, engine, origin, proc };
}

/**
 * Predict on one API at each number of connections: where the throughput stops rising, and which
 * thread is busy there (the event loop's busy and waiting-for-a-core shares, the inference thread's,
 * the machine's cores).
 */
async function sweep(api: Api, predict: Partial<autocannon.Options>, counts: number[], redis: Redis): Promise<void> {
  console.log(`\npredict ${api.engine} by connections (${duration} s each; event loop = the API's main thread):`);
  console.log('connections   req/s  p50 ms  p99 ms  µs event loop/request  event loop busy  waiting for a core  inference thread busy  machine cores busy  rest of machine');
  for (const c of counts) {
    const u0 = await usage(api.proc.child.pid!, redis);
    const row = await run(`${api.origin}/v1/predict`, { ...predict, connections: c }, duration, 'sweep');
    const s = spent(u0, await usage(api.proc.child.pid!, redis));
    const apiTotal = ROLES.reduce((a, r) => a + s.api[r], 0);
    const pct = (sec: number) => `${fmt((100 * sec) / s.wall)} %`;
    console.log(
      `${String(c).padStart(11)}  ${fmt(row.rps).padStart(6)}  ${String(row.p50).padStart(6)}  ${String(row.p99).padStart(6)}  ${fmt((s.api.main / row.requests) * 1e6, 1).padStart(21)}  ${pct(s.api.main).padStart(15)}  ${pct(s.mainWait).padStart(18)}  ${pct(s.api.inference).padStart(21)}  ${fmt(s.machine / s.wall, 2).padStart(18)}  ${fmt((s.machine - apiTotal - s.bench - s.redis) / s.wall, 2).padStart(15)}`,
    );
    if (row.errors > 0) throw new Error(`${row.errors} failed requests at ${c} connections`);
  }
}

// ——— the event loop under V8's profiler ———

/** What the event loop's time went to, by where the code comes from. */
function category(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)') return 'V8 and native code outside JS (program)';
  if (/node_modules\/(ioredis|redis-parser|@ioredis|denque|cluster-key-slot)\//.test(url) || url.includes('/src/redis/')) return 'Redis client (prediction log XADD)';
  if (url.includes('node_modules/pino') || url.includes('/src/logger.ts') || url.includes('/src/api/request-id.ts')) return 'request id + logging (pino)';
  if (url.includes('node_modules/prom-client') || url.includes('/src/api/metrics.ts') || url.includes('/src/api/routes/metrics.ts')) return 'metrics (prom-client)';
  if (url.includes('node_modules/pngjs') || url.includes('/src/image/') || url === 'node:zlib') return 'PNG decode + preprocessing (inline)';
  if (url.includes('/src/serving/') || url.includes('node:internal/worker') || url.includes('messageport')) return 'batcher + inference-thread messaging';
  if (/node_modules\/(fastify|@fastify|find-my-way|fast-json-stringify|light-my-request|avvio|fast-content-type-parse|content-type|toad-cache|secure-json-parse|process-warning|abstract-logging)/.test(url)) return 'Fastify (routing, hooks, reply, JSON)';
  if (url.includes('/src/')) return 'service code (routes, hooks)';
  if (/^node:(_http|http|net|stream|internal\/(http|streams|stream_base|net|js_stream|timers|url|dns|errors))/.test(url) || url.startsWith('node:internal/stream')) return 'Node HTTP + sockets';
  if (url.startsWith('node:') || url === '') return 'Node other (promises, timers, buffers)';
  return 'other JS';
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/**
 * Self time of the event loop's samples between `from` and `to` (CLOCK_MONOTONIC µs, which is
 * V8's profile clock and process.hrtime's on Linux), by category. A native function (no URL: a
 * socket write, postMessage, inflateSync) counts for the JS that called it.
 */
function profileBreakdown(profile: { nodes: ProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] }, from: number, to: number): { categories: Map<string, number>; functions: Map<string, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const categoryOf = new Map<number, string>();
  const categorise = (id: number): string => {
    const known = categoryOf.get(id);
    if (known) return known;
    const { url, functionName } = byId.get(id)!.callFrame;
    let c: string;
    if (url === '' && !functionName.startsWith('(') && parent.has(id)) c = categorise(parent.get(id)!);
    else c = category(url, functionName);
    categoryOf.set(id, c);
    return c;
  };
  const out = new Map<string, number>();
  const functions = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (t < from || t > to) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0; // a sample stands for the time until the next one
    const node = byId.get(profile.samples[i])!;
    if (node.callFrame.functionName === '(idle)') continue;
    const c = categorise(node.id);
    out.set(c, (out.get(c) ?? 0) + dt);
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? ` ${url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*?\/(src|bench|test)\//, '$1/')}:${lineNumber + 1}` : '';
    const fn = `${functionName || '(anonymous)'}${where}`;
    functions.set(fn, (functions.get(fn) ?? 0) + dt);
  }
  return { categories: out, functions };
}

/**
 * One API (INFERENCE_ENGINE=auto) under `--cpu-prof`: warmed up, one predict run of `duration`, then
 * stopped so that it writes its profiles; the event loop's samples within the run, by category.
 */
async function profilePass(env: Record<string, string>, predict: Partial<autocannon.Options>, dir: string): Promise<void> {
  console.log(`\nthe event loop under V8's CPU profiler (one more API, INFERENCE_ENGINE=auto; ${duration} s of predict after ${args.warmup} s of warm-up; the profiler slows it, so only the shares count):`);
  // V8 samples by the wall clock: a thread that loses its core is charged, on its next sample, to
  // where it stopped. Calls that wake another thread (writev wakes autocannon, postMessage the
  // inference thread) carry the preemption that often follows on two busy cores.
  console.log('  (samples are wall-clock time: a native call that wakes another thread — writev, postMessage — includes the wait for the core it handed over)');
  await mkdir(dir, { recursive: true });
  const api = await startApi('auto', env, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  let row: Row;
  let from: number;
  let to: number;
  try {
    await run(`${api.origin}/v1/predict`, predict, Number(args.warmup), 'warm-up');
    from = Number(process.hrtime.bigint() / 1000n);
    row = await run(`${api.origin}/v1/predict`, predict, duration, 'POST /v1/predict');
    to = Number(process.hrtime.bigint() / 1000n);
  } finally {
    await api.proc.stop();
  }
  // The main thread's profile: CPU.<date>.<time>.<pid>.<thread id 0>.<seq>.cpuprofile
  const file = (await readdir(dir)).find((f) => f.includes(`.${api.proc.child.pid}.0.`) && f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no main-thread profile in ${dir}`);
  if (args['profile-out']) await copyFile(join(dir, file), args['profile-out']); // for Chrome DevTools' Performance panel
  const { categories: shares, functions } = profileBreakdown(JSON.parse(readFileSync(join(dir, file), 'utf8')), from, to);
  const busy = [...shares.values()].reduce((a, b) => a + b, 0);
  console.log(`  ${fmt(row.rps)} req/s under the profiler; the event loop was busy ${fmt(busy / 1e4 / duration)} % of the run; of its busy time:`);
  for (const [c, us] of [...shares].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${fmt((100 * us) / busy, 1).padStart(5)} %  ${fmt(us / row.requests, 1).padStart(5)} µs/request  ${c}`);
  }
  console.log('  the functions with the most self time (a native one, such as a socket write, by its own name):');
  for (const [f, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, PROFILE_TOP)) {
    console.log(`  ${fmt((100 * us) / busy, 1).padStart(5)} %  ${fmt(us / row.requests, 1).padStart(5)} µs/request  ${f}`);
  }
}

// ——— the run ———

const base = await mkdtemp(join(tmpdir(), 'mnist-bench-'));
const prefix = `bench-${randomUUID().slice(0, 8)}`;
const apis: Api[] = [];
const redis = new Redis(REDIS_URL);
let failed = false;
try {
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; load average ${load()}`);
  process.stdout.write('training a small model… ');
  const store = new ModelStore(join(base, 'models'));
  const version = await writeFixtureVersion(store);
  console.log(`version ${version}`);

  const env = {
    MODELS_DIR: store.root,
    DATASETS_DIR: join(base, 'datasets'),
    QUEUE_PREFIX: prefix,
    REDIS_URL,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    TF_BACKEND: process.env.TF_BACKEND ?? 'wasm',
  };
  // One after the other: each warms its model up without the other's start-up beside it.
  for (const setting of engines) apis.push(await startApi(setting, env));

  const test = await loadMnist('test');
  const png = encodeGrayPng(test.images.subarray(0, 784));
  const predict = { method: 'POST' as const, headers: { 'content-type': 'image/png' }, body: png };
  for (const api of apis) {
    const check = await fetch(`${api.origin}/v1/predict`, { method: 'POST', headers: predict.headers, body: new Uint8Array(png) });
    if (check.status !== 200) throw new Error(`predict (INFERENCE_ENGINE=${api.setting}) answered ${check.status}: ${await check.text()}`);
    console.log(`API INFERENCE_ENGINE=${api.setting} on ${api.origin}: version ${version} runs on ${api.engine} (GET /v1/models/serving loaded[].engine), pid ${api.proc.child.pid}`);
  }
  const label = (api: Api) => `predict ${api.engine}`;
  console.log(`PNG ${png.length} bytes (MNIST test digit 0, a ${test.labels[0]}); ${connections} connections; ${args.warmup} s of predict on each API to warm up, then ${rounds} rounds of ${duration} s per route: /healthz on the first API, then predict on each`);

  // A fresh API process runs ~15% slower for its first ~8 s under load (V8's helper threads take
  // more of the CPU then; the cause is not pinned down); the rounds measure it after that.
  for (const api of apis) await run(`${api.origin}/v1/predict`, predict, Number(args.warmup), 'warm-up');
  const rows: (Row & { round: number; load: string })[] = [];
  const totals = new Map<string, ModelTotals>();
  const cpu = new Map<string, Spent>();
  const scrape = async (api: Api) => modelTotals(await fetch(`${api.origin}/metrics`).then((r) => r.text()));
  /** One measured run: its row, the API's CPU and (for predict) its model calls, added to the route's totals. */
  const measure = async (api: Api, route: string, path: string, opts: Partial<autocannon.Options>, round: number) => {
    const before = await scrape(api);
    const u0 = await usage(api.proc.child.pid!, redis);
    const row = await run(`${api.origin}${path}`, opts, duration, route);
    const u1 = await usage(api.proc.child.pid!, redis);
    const after = await scrape(api);
    rows.push({ round, load: load(), ...row });
    totals.set(route, addTotals(totals.get(route) ?? NO_TOTALS, minusTotals(after, before)));
    cpu.set(route, addSpent(cpu.get(route) ?? NO_SPENT, spent(u0, u1)));
  };
  for (let round = 1; round <= rounds; round++) {
    await measure(apis[0], 'GET /healthz', '/healthz', {}, round);
    for (const api of apis) await measure(api, label(api), '/v1/predict', predict, round);
  }
  const routes = ['GET /healthz', ...apis.map(label)];
  const medians = routes.map((route) => {
    const of = rows.filter((r) => r.route === route);
    return { route, rps: median(of.map((r) => r.rps)), p50: median(of.map((r) => r.p50)), p99: median(of.map((r) => r.p99)), errors: of.reduce((n, r) => n + r.errors, 0), requests: of.reduce((n, r) => n + r.requests, 0) };
  });

  console.log('');
  console.log('round   route                 req/s    p50 ms  p99 ms  errors  requests  load average after (median: all rounds)');
  for (const r of [...rows.map((r) => ({ ...r, label: String(r.round) })), ...medians.map((m) => ({ ...m, label: 'median', load: '' }))]) {
    console.log(`${r.label.padEnd(7)} ${r.route.padEnd(20)} ${fmt(r.rps).padStart(6)}  ${String(r.p50).padStart(6)}  ${String(r.p99).padStart(6)}  ${String(r.errors).padStart(6)}  ${String(r.requests).padStart(8)}  ${r.load}`);
  }
  const [health, ...preds] = medians;
  console.log('');
  for (const p of preds) console.log(`${p.route} / healthz throughput (medians): ${(p.rps / health.rps).toFixed(2)}`);
  if (preds.length > 1) console.log(`${preds[0].route} / ${preds[1].route} throughput (medians): ${(preds[0].rps / preds[1].rps).toFixed(2)}; p99 ${preds[0].p99} ms vs ${preds[1].p99} ms`);
  console.log('(predictions/s = predict req/s: one image per request)');
  const served = preds[0];
  const misses = [served.rps < TARGET_RPS && 'throughput', served.p99 > TARGET_P99_MS && 'p99', served.errors > 0 && 'errors'].filter(Boolean);
  console.log(`targets for ${served.route} on a 2-core machine (≥ ${TARGET_RPS} predictions/s, p99 ≤ ${TARGET_P99_MS} ms, 0 errors), medians: ${misses.length ? `missed (${misses.join(', ')})` : 'met'}`);

  console.log('\nmodel calls during the predict rounds (from /metrics; model time is measured in the inference thread):');
  console.log('route                  engine label   calls  mean batch  µs model/image  ms model/call  ms queued  ms batcher→answer  inference thread busy');
  for (const api of apis) {
    const t = totals.get(label(api))!;
    const s = cpu.get(label(api))!;
    const seen = Object.entries(t.engines).filter(([, n]) => n > 0).map(([e]) => e).join('+') || '—';
    if (seen !== api.engine) console.log(`  (!) /metrics counted model calls under engine="${seen}", /v1/models/serving says ${api.engine}`);
    console.log(
      `${label(api).padEnd(22)} ${seen.padEnd(13)} ${String(t.calls).padStart(6)}  ${fmt(t.images / t.calls, 1).padStart(10)}  ${fmt((t.seconds / t.images) * 1e6).padStart(14)}  ${fmt((t.seconds / t.calls) * 1000, 2).padStart(13)}  ${fmt((t.queued / t.requests) * 1000, 2).padStart(9)}  ${fmt((t.answered / t.requests) * 1000, 2).padStart(16)}  ${fmt((100 * t.seconds) / s.wall).padStart(3)} % (model) / ${fmt((100 * s.api.inference) / s.wall)} % (CPU)`,
    );
  }

  console.log('\nCPU per request, µs (all rounds; API threads from /proc/<pid>/task/*/schedstat, this process = autocannon, Redis from INFO cpu):');
  console.log('route                  API event loop  inference  decode  V8/libuv helpers  API total  autocannon  Redis  | cores busy: API  autocannon  Redis  rest  machine (of 2)  stolen | event loop: busy  waiting for a core');
  for (const route of routes) {
    const s = cpu.get(route)!;
    const n = rows.filter((r) => r.route === route).reduce((a, r) => a + r.requests, 0);
    const per = (sec: number) => fmt((sec / n) * 1e6, 1);
    const apiTotal = ROLES.reduce((a, r) => a + s.api[r], 0);
    const cores = (sec: number) => fmt(sec / s.wall, 2);
    console.log(
      `${route.padEnd(22)} ${per(s.api.main).padStart(14)}  ${per(s.api.inference).padStart(9)}  ${per(s.api.decode).padStart(6)}  ${per(s.api.helpers).padStart(16)}  ${per(apiTotal).padStart(9)}  ${per(s.bench).padStart(10)}  ${per(s.redis).padStart(5)}  |             ${cores(apiTotal).padStart(4)}  ${cores(s.bench).padStart(10)}  ${cores(s.redis).padStart(5)}  ${cores(s.machine - apiTotal - s.bench - s.redis).padStart(4)}  ${cores(s.machine).padStart(14)}  ${cores(s.steal).padStart(6)} |             ${fmt((100 * s.api.main) / s.wall).padStart(3)} %  ${fmt((100 * s.mainWait) / s.wall).padStart(3)} %`,
    );
  }
  console.log(`load average after: ${load()}`);
  failed = rows.some((r) => r.errors > 0);

  if (args.sweep) await sweep(apis[0], predict, args.sweep.split(',').map(Number), redis);
  if (args.profile) await profilePass(env, predict, join(base, 'profile'));
} catch (err) {
  console.error(err);
  failed = true;
} finally {
  await Promise.all(apis.map((a) => a.proc.stop()));
  await rm(base, { recursive: true, force: true });
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
}
process.exit(failed ? 1 : 0);

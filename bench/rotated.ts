/**
 * Rotated and scaled digits: what a spatial transformer buys over augmentation, and with it.
 *
 * Builds a rotated/scaled copy of the 10k MNIST test set — every digit turned by an angle drawn from
 * ±45° and zoomed by a factor from 0.7–1.2 about its centre (bilinear, black outside), from a fixed
 * seed — then trains four models through the service's own training path (`runTrainJob`, the
 * job's use case, on both cores) with the same recipe, and reports each one's accuracy on the
 * plain and on the rotated test set:
 *
 *   cnn | cnn + augmentation | stn | stn + augmentation
 *
 * Augmentation is the job field `augment: {rotation: 45, scale: [0.7, 1.2]}`: the test set's own
 * range, the strongest fair baseline. ~10 minutes on the 2-core machine.
 *
 *   node --import tsx bench/rotated.ts [--epochs 3] [--seed 1] [--set-seed 2024]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { loadMnist } from '../src/data/mnist.ts';
import { initBackend } from '../src/ml/backend.ts';
import { randomTransforms } from '../src/ml/augment.ts';
import type { LabelledImages } from '../src/data/labelled-images.ts';
import { evaluate } from '../src/ml/evaluate.ts';
import { loadModel } from '../src/ml/load-model.ts';
import { mulberry32 } from '../src/ml/random.ts';
import { parseJobData, type TrainJobData } from '../src/queue/job-data.ts';
import { filesToArtifacts } from '../src/ml/model-files.ts';
import { runTrainJob } from '../src/worker/train-job.ts';
import { endProgress, progress } from './progress.ts';
import { DIGIT_PIXELS } from '../src/schemas/digit.ts';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    'set-seed': { type: 'string', default: '2024' },
  },
});
const ROTATION = 45;
const SCALE = [0.7, 1.2];
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const pct = (x: number) => `${(x * 100).toFixed(2)} %`;

/** The test set, each digit turned and zoomed about its centre by its own draw from the seed. */
function rotatedScaled(test: LabelledImages, seed: number): LabelledImages {
  const transforms = randomTransforms(test.count, { rotation: ROTATION, shift: 0, scale: SCALE }, mulberry32(seed));
  const images = tf.tidy(() => {
    const xs = tf.tensor4d(Float32Array.from(test.images), [test.count, 28, 28, 1]);
    return tf.image.transform(xs, tf.tensor2d(transforms, [test.count, 8]), 'bilinear', 'constant', 0).dataSync();
  });
  return { images: Uint8Array.from(images, (v) => Math.round(Math.min(255, Math.max(0, v)))), labels: test.labels, count: test.count };
}

await initBackend('wasm');
const test = await loadMnist('test');
const rotated = rotatedScaled(test, Number(args['set-seed']));
console.log(`rotated/scaled test set: 10,000 MNIST test digits, ±${ROTATION}°, scale ${SCALE.join('–')}, seed ${args['set-seed']} (${rotated.count * DIGIT_PIXELS} pixels)`);

const runs: { label: string; body: Partial<TrainJobData> }[] = [
  { label: 'cnn', body: { architecture: 'cnn' } },
  { label: 'cnn + augmentation', body: { architecture: 'cnn', augment: { rotation: ROTATION, shift: 0, scale: SCALE } } },
  { label: 'stn', body: { architecture: 'stn' } },
  { label: 'stn + augmentation', body: { architecture: 'stn', augment: { rotation: ROTATION, shift: 0, scale: SCALE } } },
];
const rows: string[] = [];
for (const { label, body } of runs) {
  const params = parseJobData({ type: 'train', epochs: Number(args.epochs), seed: Number(args.seed), ...body }) as TrainJobData;
  console.log(`\n${label}: ${JSON.stringify(body)}, ${params.epochs} epochs, batch ${params.batchSize}; load average ${load()}`);
  const t0 = performance.now();
  const outcome = await runTrainJob(params, {
    onBatchEnd: (p) => p.batch % 25 === 0 && progress(`epoch ${p.epoch}/${p.epochs}, batch ${p.batch}/${p.batches}`),
  });
  const seconds = (performance.now() - t0) / 1000;
  const model = await loadModel(filesToArtifacts(outcome.files));
  const onRotated = evaluate(model, rotated).accuracy;
  model.dispose();
  endProgress();
  console.log(`  MNIST test ${pct(outcome.metrics.testAccuracy)}, rotated/scaled ${pct(onRotated)}, ${seconds.toFixed(0)} s; load average ${load()}`);
  rows.push(`| ${label} | ${pct(outcome.metrics.testAccuracy)} | ${pct(onRotated)} | ${seconds.toFixed(0)} s |`);
}
console.log(`\n| model (${args.epochs} epochs, seed ${args.seed}) | MNIST test | rotated/scaled test | training time |`);
console.log('|---|---:|---:|---:|');
for (const row of rows) console.log(row);
process.exit(0);

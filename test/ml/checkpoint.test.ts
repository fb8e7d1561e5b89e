import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { loadMnist } from '../../src/data/mnist.ts';
import { createModel } from '../../src/ml/architectures.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { CheckpointError, encodeCheckpoint, restoreCheckpoint } from '../../src/ml/checkpoint.ts';
import { train, TrainingPausedError, type TrainOptions, type TrainPosition } from '../../src/ml/train.ts';
import type { EpochStats } from '../../src/schemas/jobs.ts';

before(() => initBackend('wasm'));

async function subset(count: number) {
  const all = await loadMnist('train');
  return { images: all.images.subarray(0, count * 784), labels: all.labels.subarray(0, count), count };
}

// One thread (no data-parallel replicas), augmentation on: every random stream must be resumed too;
// the one-cycle rate changes every step, so a resume at the wrong step would not end the same.
const OPTS: TrainOptions = { epochs: 3, batchSize: 50, validationSplit: 0.2, seed: 11, augment: { rotation: 10, shift: 2, scale: [0.9, 1.1] }, replicas: 1, schedule: { name: 'one-cycle', rate: 0.005 } };

const weightsOf = (model: LayersModel) => model.getWeights().map((w) => Array.from(w.dataSync()));

test('a training paused mid-epoch and resumed from its checkpoint in a new model ends exactly as one never stopped', async () => {
  const data = await subset(600); // 480 to train on: 10 batches an epoch
  const straight = createModel('cnn', { learningRate: 0.002, seed: 1 });
  const straightHistory = await train(straight, data, OPTS);

  const first = createModel('cnn', { learningRate: 0.002, seed: 1 });
  let batches = 0;
  let saved: Uint8Array | undefined;
  let position: TrainPosition | undefined;
  await assert.rejects(
    train(first, data, OPTS, {
      onBatchEnd: () => batches++,
      shouldPause: () => batches === 14, // epoch 2, batch 4
      onCheckpoint: async (at) => {
        saved = await encodeCheckpoint(first, at, 'job-a');
        position = at;
      },
    }),
    (err: unknown) => err instanceof TrainingPausedError && err.position.epochsDone === 1 && err.position.batchesDone === 4,
  );
  first.dispose();
  assert.deepEqual({ epochsDone: position!.epochsDone, batchesDone: position!.batchesDone, epochs: position!.history.map((h) => h.epoch) }, { epochsDone: 1, batchesDone: 4, epochs: [1] });

  const resumed = createModel('cnn', { learningRate: 0.002, seed: 99 }); // other initial weights: the checkpoint's must win
  const resumeFrom = await restoreCheckpoint(resumed, saved!, 'job-a');
  const reported: number[] = [];
  const resumedBatches: string[] = [];
  const history = await train(resumed, data, { ...OPTS, resumeFrom }, { onEpochEnd: (s) => reported.push(s.epoch), onBatchEnd: (p) => resumedBatches.push(`${p.epoch}.${p.batch}`) });

  assert.deepEqual(reported, [2, 3], 'only the epochs not yet done are trained and reported');
  assert.equal(resumedBatches[0], '2.5', 'training goes on with the batch after the checkpoint');
  assert.deepEqual(history, straightHistory, 'the same per-epoch loss and accuracy, epoch 2 included');
  assert.deepEqual(weightsOf(resumed), weightsOf(straight), 'the same final weights');
  straight.dispose();
  resumed.dispose();
});

test('epoch checkpoints: resuming after epoch 2 trains only epoch 3, and a finished training resumes to nothing', async () => {
  const data = await subset(300);
  const model = createModel('cnn', { learningRate: 0.002, seed: 2 });
  const checkpoints: { position: TrainPosition; bytes: Uint8Array }[] = [];
  const order: string[] = [];
  await train(model, data, { ...OPTS, augment: undefined }, {
    onCheckpoint: async (position) => {
      order.push(`checkpoint ${position.epochsDone}`);
      checkpoints.push({ position, bytes: await encodeCheckpoint(model, position, 't') });
    },
    onEpochEnd: (s: EpochStats) => order.push(`epoch ${s.epoch}`),
  });
  assert.deepEqual(order, ['checkpoint 1', 'epoch 1', 'checkpoint 2', 'epoch 2', 'checkpoint 3', 'epoch 3'], 'each epoch is saved before it is reported');
  model.dispose();

  const again = createModel('cnn', { learningRate: 0.002, seed: 2 });
  const from2 = await restoreCheckpoint(again, checkpoints[1].bytes, 't');
  const epochs: number[] = [];
  const history = await train(again, data, { ...OPTS, augment: undefined, resumeFrom: from2 }, { onEpochEnd: (s) => epochs.push(s.epoch) });
  assert.deepEqual(epochs, [3]);
  assert.deepEqual(history.map((h) => h.epoch), [1, 2, 3]);

  const done = await restoreCheckpoint(again, checkpoints[2].bytes, 't');
  const none: number[] = [];
  assert.equal((await train(again, data, { ...OPTS, augment: undefined, resumeFrom: done }, { onBatchEnd: (p) => none.push(p.batch) })).length, 3);
  assert.deepEqual(none, []);
  again.dispose();
});

test('a checkpoint of another training, another architecture or a damaged file is refused and leaves the model as it was', async () => {
  const model = createModel('cnn', { learningRate: 0.001, seed: 3 });
  const position: TrainPosition = { epochsDone: 0, batchesDone: 0, partial: { lossSum: 0, accSum: 0, seen: 0 }, history: [], augmentDraws: 0 };
  const bytes = await encodeCheckpoint(model, position, 'mine');
  const other = createModel('cnn', { learningRate: 0.001, seed: 4 });
  const before = weightsOf(other);
  await assert.rejects(restoreCheckpoint(other, bytes, 'yours'), CheckpointError);
  const lenet = createModel('lenet5', { learningRate: 0.001, seed: 3 });
  await assert.rejects(restoreCheckpoint(lenet, bytes, 'mine'), /does not fit the model/);
  await assert.rejects(restoreCheckpoint(other, bytes.subarray(0, 40), 'mine'), CheckpointError);
  await assert.rejects(restoreCheckpoint(other, bytes.subarray(0, bytes.length - 8), 'mine'), /outside the file/);
  await assert.rejects(restoreCheckpoint(other, new TextEncoder().encode('hello'), 'mine'), /not a checkpoint/);
  assert.deepEqual(weightsOf(other), before);
  const tensors = tf.memory().numTensors;
  await restoreCheckpoint(other, bytes, 'mine');
  assert.deepEqual(weightsOf(other), weightsOf(model));
  assert.ok(tf.memory().numTensors <= tensors + 1, 'restoring leaks no tensors');
  for (const m of [model, other, lenet]) m.dispose();
});

test('data-parallel training (two threads) resumes from a mid-epoch checkpoint to the same weights too, to float rounding', async () => {
  const data = await subset(400);
  const opts: TrainOptions = { epochs: 2, batchSize: 40, validationSplit: 0, seed: 5, replicas: 2 };
  const straight = createModel('cnn', { learningRate: 0.002, seed: 6 });
  const straightHistory = await train(straight, data, opts);
  const first = createModel('cnn', { learningRate: 0.002, seed: 6 });
  let batches = 0;
  let saved: Uint8Array | undefined;
  await assert.rejects(
    train(first, data, opts, { onBatchEnd: () => batches++, shouldPause: () => batches === 13, onCheckpoint: async (p) => void (saved = await encodeCheckpoint(first, p, 't')) }),
    TrainingPausedError,
  );
  first.dispose();
  const resumed = createModel('cnn', { learningRate: 0.002, seed: 7 });
  const history = await train(resumed, data, { ...opts, resumeFrom: await restoreCheckpoint(resumed, saved!, 't') });
  assert.deepEqual(history.map((h) => h.epoch), [1, 2]);
  history.forEach((h, i) => assert.ok(Math.abs(h.loss - straightHistory[i].loss) < 1e-6, `epoch ${h.epoch} loss ${h.loss} vs ${straightHistory[i].loss}`));
  const [a, b] = [weightsOf(resumed).flat(), weightsOf(straight).flat()];
  assert.ok(a.every((w, i) => Math.abs(w - b[i]) < 1e-5), 'the same final weights');
  straight.dispose();
  resumed.dispose();
});

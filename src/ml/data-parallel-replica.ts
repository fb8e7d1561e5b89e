import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from './backend.ts';
import { batchGradients } from './batch-gradients.ts';
import { frozenBatchNormInInferenceMode } from './freeze.ts';
import './layers/spatial-transformer.ts'; // registers the custom layer class modelFromJSON may meet
import type { FromReplica, ToReplica } from './data-parallel-messages.ts';

// A worker thread holding a copy of the model being trained: it computes the gradients of its part
// of each batch and never updates weights itself (the training thread's optimizer does).
const port = parentPort!;
let model: tfl.LayersModel | undefined;

async function handle(msg: ToReplica): Promise<FromReplica> {
  if (msg.type === 'init') {
    await initBackend(msg.backend);
    model = await tfl.models.modelFromJSON({ modelTopology: JSON.parse(msg.topology) });
    frozenBatchNormInInferenceMode(model); // the trainable flags came with the topology
    // Same topology and trainable flags, so the same weight order; a size check catches a mismatch.
    const sizes = model.weights.map((w) => w.read().size);
    if (sizes.length !== msg.weights.length || sizes.some((s, i) => s !== msg.weights[i].length)) throw new Error('the replica\'s weights do not match the model\'s');
    const m = model;
    tf.tidy(() => m.setWeights(m.weights.map((w, i) => tf.tensor(msg.weights[i], w.shape as number[])))); // the variables keep their own reference
    return { type: 'ready' };
  }
  if (!model) throw new Error('step before init');
  if (msg.trainable) {
    const trainable = model.trainableWeights;
    if (trainable.length !== msg.trainable.length) throw new Error(`replica has ${trainable.length} trainable weights, the model ${msg.trainable.length}`);
    const values = msg.trainable;
    tf.tidy(() => trainable.forEach((w, i) => w.write(tf.tensor(values[i], w.shape as number[]))));
  }
  const xs = tf.tensor(msg.xs, msg.xsShape);
  const ys = tf.tensor(msg.ys, msg.ysShape);
  try {
    return { type: 'gradients', result: batchGradients(model, xs, ys) };
  } finally {
    tf.dispose([xs, ys]);
  }
}

// One message at a time, in order: the training thread waits for each answer before the next batch.
let queue = Promise.resolve();
port.on('message', (msg: ToReplica) => {
  queue = queue.then(async () => {
    try {
      const reply = await handle(msg);
      port.postMessage(reply, reply.type === 'gradients' ? reply.result.grads.map((g) => g.buffer as ArrayBuffer) : []);
    } catch (err) {
      port.postMessage({ type: 'error', message: (err as Error).stack ?? String(err) } satisfies FromReplica);
    }
  });
});

import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { currentBackendName } from './backend.ts';
import { batchGradients, type BatchGradients } from './batch-gradients.ts';
import { SpatialTransformer } from './layers/spatial-transformer.ts';
import type { FromReplica, ToReplica } from './data-parallel-messages.ts';
import { siblingModule, startTsWorker } from '../ts-worker.ts';

/**
 * Layers a replica on another thread computes as this one would: pure functions of weights and
 * input, with no dropout masks to keep in step. Batch normalisation is among them with one
 * difference: in training each replica normalises by the statistics of its own share of the batch
 * (as PyTorch's DataParallel does without SyncBatchNorm), and only this thread's moving statistics
 * are kept.
 */
const REPLICABLE_LAYERS = new Set([
  'InputLayer', 'Conv2D', 'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'Flatten', 'Dense', 'Activation', 'Reshape', 'ReLU', 'Softmax',
  'Add', 'BatchNormalization', SpatialTransformer.className,
]);

/** Why `model` cannot be trained data-parallel, or null when it can. */
export function replicationObstacle(model: LayersModel): string | null {
  if (tf.getBackend() !== 'wasm') return `backend ${tf.getBackend()} (only wasm runs one thread per replica)`;
  const loss = (model as unknown as { loss?: unknown }).loss;
  if (loss !== 'categoricalCrossentropy') return `loss ${JSON.stringify(loss)}`;
  const metrics = (model as unknown as { metrics?: unknown }).metrics;
  if (JSON.stringify(metrics) !== JSON.stringify(['accuracy'])) return `metrics ${JSON.stringify(metrics)}`;
  for (const layer of model.layers) {
    if (!REPLICABLE_LAYERS.has(layer.getClassName())) return `layer ${layer.getClassName()}`;
    const config = layer.getConfig() as Record<string, unknown>;
    const regularized = Object.keys(config).find((k) => k.endsWith('Regularizer') && config[k] != null);
    if (regularized) return `${layer.name}.${regularized}`;
  }
  return null;
}

/** The backend replicas must use: this thread's, as initBackend chose it. */
function backendName() {
  const name = currentBackendName();
  if (!name) throw new Error('data-parallel training needs a backend chosen with initBackend');
  return name;
}

/** How many replicas an automatic choice uses: one per core, two at most (beyond that the batch halves get too small to pay). */
export function defaultReplicas(): number {
  return Math.min(2, availableParallelism());
}

/**
 * Synchronous data-parallel training over worker threads. Every batch is split between this thread
 * and the replicas; each computes the gradients of its part, and this thread's optimizer applies
 * their mean (weighted by part size) — the gradient of the whole batch's mean loss, as
 * `trainOnBatch` would. Only this thread keeps optimizer state, so learning-rate changes, Adam's
 * moments and a second `train()` on the same model behave exactly as on one thread; the replicas
 * get the updated trainable weights with the next batch.
 */
export class DataParallelTrainer {
  private weightsChanged = true;

  private constructor(
    private readonly model: LayersModel,
    private readonly replicas: ReplicaThread[],
  ) {}

  /** Starts `count - 1` replica threads holding copies of `model` (which must pass `replicationObstacle`). */
  static async start(model: LayersModel, count: number): Promise<DataParallelTrainer> {
    const obstacle = replicationObstacle(model);
    if (obstacle) throw new Error(`data-parallel training is not possible: ${obstacle}`);
    const init: ToReplica = {
      type: 'init',
      backend: backendName(),
      topology: JSON.stringify(model.toJSON(null, false)),
      weights: model.weights.map((w) => w.read().dataSync() as Float32Array),
    };
    const replicas = Array.from({ length: count - 1 }, () => new ReplicaThread());
    try {
      await Promise.all(replicas.map((r) => r.request(init)));
    } catch (err) {
      await Promise.all(replicas.map((r) => r.close()));
      throw err;
    }
    return new DataParallelTrainer(model, replicas);
  }

  get size(): number {
    return this.replicas.length + 1;
  }

  /** One optimizer step on the batch; returns [mean loss, accuracy] like `trainOnBatch`. */
  async trainOnBatch(xs: tf.Tensor, ys: tf.Tensor): Promise<[number, number]> {
    const n = xs.shape[0];
    const share = Math.ceil(n / this.size);
    const trainable = this.weightsChanged ? this.model.trainableWeights.map((w) => w.read().dataSync() as Float32Array) : undefined;
    this.weightsChanged = false;
    // The replicas' parts go out first so they compute while this thread does its own.
    const pending: Promise<BatchGradients>[] = [];
    for (let r = 0, start = share; r < this.replicas.length && start < n; r++, start += share) {
      const size = Math.min(share, n - start);
      const part = tf.tidy(() => [tf.slice(xs, start, size), tf.slice(ys, start, size)]);
      const [xv, yv] = part.map((t) => t.dataSync() as Float32Array);
      tf.dispose(part);
      const msg: ToReplica = { type: 'step', trainable, xs: xv, xsShape: [size, ...xs.shape.slice(1)], ys: yv, ysShape: [size, ...ys.shape.slice(1)] };
      pending.push(this.replicas[r].request(msg, [xv.buffer as ArrayBuffer, yv.buffer as ArrayBuffer]) as Promise<BatchGradients>);
    }
    const mine = tf.tidy(() => [tf.slice(xs, 0, Math.min(share, n)), tf.slice(ys, 0, Math.min(share, n))]);
    let own: BatchGradients;
    try {
      own = batchGradients(this.model, mine[0], mine[1]);
    } finally {
      tf.dispose(mine);
    }
    const parts = [own, ...(await Promise.all(pending))];

    let loss = 0;
    let accuracy = 0;
    for (const p of parts) {
      loss += (p.loss * p.count) / n;
      accuracy += (p.accuracy * p.count) / n;
    }
    const variables = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    const grads = variables.map((v, i) => {
      const mean = new Float32Array(v.size);
      for (const p of parts) {
        const g = p.grads[i];
        const weight = p.count / n;
        for (let j = 0; j < mean.length; j++) mean[j] += g[j] * weight;
      }
      return { name: v.name, tensor: tf.tensor(mean, v.shape) };
    });
    try {
      this.model.optimizer.applyGradients(grads);
    } finally {
      tf.dispose(grads.map((g) => g.tensor));
    }
    this.weightsChanged = true;
    return [loss, accuracy];
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.close()));
  }
}

const ENTRY = siblingModule('./data-parallel-replica', import.meta.url);

/** One worker thread holding a model replica; requests are answered in order. */
class ReplicaThread {
  private readonly worker = startTsWorker(ENTRY);
  private readonly waiting: { resolve: (msg: FromReplica) => void; reject: (err: Error) => void }[] = [];
  private failure: Error | undefined;

  constructor() {
    this.worker.on('message', (msg: FromReplica) => {
      const next = this.waiting.shift();
      if (!next) return;
      if (msg.type === 'error') next.reject(new Error(`training replica: ${msg.message}`));
      else next.resolve(msg);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`training replica exited with code ${code}`)));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }

  request(msg: ToReplica, transfer: ArrayBuffer[] = []): Promise<FromReplica | BatchGradients> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve: (m) => resolve(m.type === 'gradients' ? m.result : m), reject });
      this.worker.postMessage(msg, transfer);
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error('training replica closed');
    await this.worker.terminate();
  }
}

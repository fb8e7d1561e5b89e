import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { DatasetLimits } from '../data/dataset-error.ts';
import { ServiceError } from '../errors.ts';
import { declaredPixels, type NamedPng } from '../image/png.ts';
import { pngsToMnistPixels } from '../image/preprocess.ts';
import type { EncodedDataset } from '../store/dataset-store.ts';
import { siblingModule, startTsWorker } from '../ts-worker.ts';
import { packPngs, transferable, type DecodeReply, type DecodeTask } from './decode-messages.ts';
import { formatCount } from '../format.ts';

const WORKER_ENTRY = siblingModule('./decode-worker', import.meta.url);
const START_TIMEOUT_MS = 30_000;

/**
 * Decoding is pure CPU work. One thread per core but one keeps every other core busy on a large
 * upload while the event loop (routing, /healthz, small predictions) keeps a core of its own; more
 * threads would only share the same cores and hold more images in memory at once. At least one,
 * so a single-core machine still decodes off the event loop.
 */
export const DECODE_THREADS = Math.max(1, availableParallelism() - 1);

/**
 * A request of one PNG of at most this many pixels (64×64) is decoded on the event loop: a round
 * trip to a thread costs 0.05–0.2 ms, as much as decoding a 28×28 digit (0.05–0.1 ms), and
 * bench:predict sends thousands of those a second. Measured on a busy 2-core VM, decoding and
 * preprocessing take ~50 ns a pixel for 8-bit PNGs and up to ~130 ns plus ~0.3 ms for pngjs's cases
 * (16-bit, palette, interlaced): 64×64 costs at most ~0.6 ms, while 256×256 (65,536) would cost
 * 3–9 ms. Only one image, because of that fixed cost: 64 one-pixel 16-bit PNGs take ~17 ms.
 */
export const INLINE_MAX_PIXELS = 4096;

/** An upload to read on a thread: an ImageFolder ZIP, or an IDX pair. */
export type DatasetUpload = { zip: Uint8Array } | { images: Uint8Array; labels: Uint8Array };

interface Job {
  task: DecodeTask;
  /** Pixels a prediction's PNGs declare (0 for uploads): what the waiting queue is bounded by. */
  pixels: number;
  transfer: ArrayBuffer[];
  resolve: (reply: DecodeReply) => void;
  reject: (err: Error) => void;
}

interface Thread {
  worker: Worker;
  ready: boolean;
  /** The task it is working on: one at a time, so the pool decides the order of the rest. */
  job?: Job;
}

/**
 * Threads that decode PNGs and read dataset uploads, so the API's event loop only routes and
 * answers. Work waits in the pool, not in the threads: predictions go before dataset uploads (which
 * take seconds), and no more images are being decoded at once than there are threads. A thread that
 * dies fails only the task it had and is replaced.
 */
export class DecodePool {
  private threads: Thread[] = [];
  private readonly predictions: Job[] = [];
  private readonly uploads: Job[] = [];
  /** Pixels of the predictions waiting for a thread (not those being decoded). */
  private queuedPixels = 0;
  private closed = false;

  private constructor(
    private readonly entry: URL,
    private readonly log: Logger,
    private readonly maxQueuedPixels: number,
  ) {}

  /**
   * `entry` is the thread's module; tests swap in one that crashes. `maxQueuedPixels`
   * (PREDICT_MAX_QUEUED_PIXELS; 0 = no bound): past it, a prediction's PNGs are refused rather than queued.
   */
  static async start(options: { size: number; log: Logger; entry?: URL; maxQueuedPixels?: number }): Promise<DecodePool> {
    const pool = new DecodePool(options.entry ?? WORKER_ENTRY, options.log, options.maxQueuedPixels ?? 0);
    const started = Array.from({ length: options.size }, () => pool.startThread());
    try {
      await Promise.all(started);
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  private startThread(): Promise<void> {
    const thread: Thread = { worker: startTsWorker(this.entry), ready: false };
    this.threads.push(thread);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => void thread.worker.terminate(), START_TIMEOUT_MS);
      thread.worker.on('message', (reply: DecodeReply) => {
        if (reply.type === 'ready') {
          clearTimeout(timer);
          thread.ready = true;
          resolve();
        } else {
          const job = thread.job!;
          thread.job = undefined;
          if (reply.type === 'failed') job.reject(reply.kind ? new ServiceError(reply.kind, reply.message) : new Error(reply.message));
          else job.resolve(reply);
        }
        this.dispatch();
      });
      const lost = (err: Error) => {
        clearTimeout(timer);
        reject(err);
        this.lost(thread, err);
      };
      thread.worker.on('error', lost);
      thread.worker.on('exit', (code) => lost(new Error(`decode thread exited with code ${code}`)));
    });
  }

  private lost(thread: Thread, err: Error): void {
    if (!this.threads.includes(thread)) return; // 'error' is followed by 'exit'
    this.threads = this.threads.filter((t) => t !== thread);
    thread.job?.reject(new Error(`the decode thread stopped: ${err.message}`));
    if (this.closed) return;
    this.log.error({ err }, 'decode thread died; starting another');
    // One that never started would not start again: no restart loop, and the start-up fails instead.
    if (thread.ready) this.startThread().catch((e: Error) => this.log.error({ err: e }, 'replacement decode thread failed to start'));
    else if (this.threads.length === 0) this.failQueued(new Error('no decode thread is running'));
  }

  private dispatch(): void {
    for (const thread of this.threads) {
      if (!thread.ready || thread.job) continue;
      const job = this.predictions.shift() ?? this.uploads.shift();
      if (!job) return;
      this.queuedPixels -= job.pixels;
      thread.job = job;
      thread.worker.postMessage(job.task, job.transfer);
    }
  }

  private run(queue: Job[], task: DecodeTask, transfer: ArrayBuffer[], pixels = 0): Promise<DecodeReply> {
    if (this.closed) return Promise.reject(new ServiceError('unavailable', 'the API is shutting down'));
    if (this.threads.length === 0) return Promise.reject(new Error('no decode thread is running'));
    return new Promise((resolve, reject) => {
      queue.push({ task, pixels, transfer, resolve, reject });
      this.queuedPixels += pixels;
      this.dispatch();
    });
  }

  /** The PNGs of one request as count × 784 MNIST inputs: here when it is one small PNG (INLINE_MAX_PIXELS), else on a thread. */
  async preprocessPngs(pngs: NamedPng[]): Promise<Uint8Array> {
    const pixels = declaredPixels(pngs);
    if (pngs.length === 1 && pixels <= INLINE_MAX_PIXELS) return pngsToMnistPixels(pngs);
    // An empty queue takes any request PREDICT_MAX_PIXELS allows; a full one refuses at once.
    if (this.maxQueuedPixels > 0 && this.queuedPixels > 0 && this.queuedPixels + pixels > this.maxQueuedPixels) {
      throw new ServiceError('unavailable', `images of ${formatCount(this.queuedPixels)} pixels are waiting to be decoded here (PREDICT_MAX_QUEUED_PIXELS ${formatCount(this.maxQueuedPixels)}); try again in a few seconds`, 2);
    }
    const task = packPngs(pngs);
    const reply = (await this.run(this.predictions, task, [task.bytes], pixels)) as Extract<DecodeReply, { type: 'pixels' }>;
    return new Uint8Array(reply.pixels);
  }

  /** A dataset upload read, preprocessed, encoded and hashed on a thread, ready for DatasetStore.add. The buffers are moved there: do not use them after. */
  async readDataset(upload: DatasetUpload, limits: DatasetLimits): Promise<EncodedDataset> {
    let task: DecodeTask;
    if ('zip' in upload) task = { type: 'imagefolder', zip: transferable(upload.zip), limits };
    else task = { type: 'idx', images: transferable(upload.images), labels: transferable(upload.labels), limits };
    const transfer = task.type === 'imagefolder' ? [task.zip] : [task.images, task.labels];
    const { images, labels, count, classCounts, sha256 } = (await this.run(this.uploads, task, transfer)) as Extract<DecodeReply, { type: 'dataset' }>;
    return { images: new Uint8Array(images), labels: new Uint8Array(labels), count, classCounts, sha256 };
  }

  private failQueued(err: Error): void {
    for (const job of this.predictions.splice(0).concat(this.uploads.splice(0))) job.reject(err);
    this.queuedPixels = 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failQueued(new ServiceError('unavailable', 'the API is shutting down'));
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
    this.threads = [];
  }
}

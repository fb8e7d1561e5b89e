import type { InferenceEngine } from './engine.ts';
import type { InferenceEngineName } from '../schemas/inference-engine.ts';
import type { ModelRegistry } from './model-registry.ts';
import { toPredictions, type Prediction } from './predictions.ts';
import { DIGIT_PIXELS, NUM_CLASSES } from '../schemas/digit.ts';
import { ServiceError } from '../errors.ts';

export interface BatcherOptions {
  /** Most images in one model call (TF Serving's max_batch_size). A larger request runs alone. */
  maxBatchSize: number;
  /**
   * How long the first request of a batch waits for others when the model is idle (TF Serving's
   * batch_timeout_micros, in ms); 0 = only those that arrived in the same event-loop turn.
   */
  timeoutMs: number;
  /**
   * Most images waiting for a model call (not those being computed); a request that would go past
   * it is refused at once (TF Serving's max_enqueued_batches). Unset or 0: no bound.
   */
  maxQueuedImages?: number;
}

/** More images are waiting for the model than PREDICT_MAX_QUEUED_IMAGES: a 503 now rather than an answer too late. */
export class PredictQueueFullError extends ServiceError {
  constructor(queued: number, max: number) {
    super('unavailable', `${queued} images are waiting for the model here (PREDICT_MAX_QUEUED_IMAGES ${max}); try again in a second`, 1);
  }
}

/** One model call, as the batcher saw it. */
export interface BatchReport {
  version: number;
  /** What ran it: 'onnxruntime' or 'tfjs'. */
  engine: InferenceEngineName;
  images: number;
  /**
   * For each request of the batch, the seconds from reaching the batcher to its model call starting
   * (TF Serving's batching queuing latency): waiting for a free thread, for others to join, or for
   * a version to load. Grows when inference is the bottleneck.
   */
  queueSeconds: number[];
  /** How long the model computed, in its thread. */
  modelSeconds: number;
  /** For each request of the batch, the seconds from reaching the batcher to its answer. */
  requestSeconds: number[];
  /** For each image, the probability of the digit it was classified as. */
  confidences: number[];
}

export interface BatchObserver {
  onBatch(report: BatchReport): void;
}

export interface PredictResult {
  modelVersion: number;
  predictions: Prediction[];
}

interface Waiting {
  arrived: number;
  pixels: Uint8Array;
  count: number;
  version: number | undefined;
  resolve: (result: PredictResult) => void;
  reject: (err: Error) => void;
}

/**
 * Groups concurrent predict requests into one model call, as TF Serving's batching does: a batch
 * per version, filled with whole requests (in arrival order) up to `maxBatchSize` images. While the
 * engine is busy, requests queue up and go together in the next call as soon as a thread is free —
 * so batches grow with load and add no latency when idle beyond `timeoutMs`. One batch holds one
 * lease on one version, so each request's answer comes whole from the version it names.
 */
export class PredictBatcher {
  private queue: Waiting[] = [];
  private queuedImages = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;

  constructor(
    private readonly registry: ModelRegistry,
    private readonly engine: InferenceEngine,
    private readonly opts: BatcherOptions,
    private readonly observer?: BatchObserver,
  ) {}

  /**
   * Throws PredictQueueFullError when `count` more images would not fit in the queue. An empty
   * queue takes any request (MAX_IMAGES_PER_REQUEST bounds its size), so a bound below it refuses
   * nothing that could ever run.
   */
  admit(count: number): void {
    const max = this.opts.maxQueuedImages ?? 0;
    if (max > 0 && this.queuedImages > 0 && this.queuedImages + count > max) throw new PredictQueueFullError(this.queuedImages, max);
  }

  /** `images`: 28×28 inputs (784 bytes each, light ink on black); `version`: the served one when absent. */
  predict(images: Uint8Array[], version?: number): Promise<PredictResult> {
    if (images.length === 0) return Promise.reject(new RangeError('no images to classify'));
    try {
      this.admit(images.length);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const pixels = new Uint8Array(images.length * DIGIT_PIXELS);
    images.forEach((img, i) => {
      if (img.length !== DIGIT_PIXELS) throw new RangeError(`image ${i} has ${img.length} pixels, not ${DIGIT_PIXELS}`);
      pixels.set(img, i * DIGIT_PIXELS);
    });
    return new Promise((resolve, reject) => {
      this.queue.push({ arrived: performance.now(), pixels, count: images.length, version, resolve, reject });
      this.queuedImages += images.length;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.inFlight >= this.engine.parallelism) return; // a finishing batch flushes the queue
    if (this.queuedImages >= this.opts.maxBatchSize) {
      this.flush();
      return;
    }
    if (this.timer) return;
    this.timer = this.opts.timeoutMs > 0 ? setTimeout(() => this.flush(), this.opts.timeoutMs) : setImmediate(() => this.flush());
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
      this.timer = undefined;
    }
    while (this.queue.length > 0 && this.inFlight < this.engine.parallelism) void this.run(this.take());
  }

  /** The oldest request and, behind it, others for the same version while they fit. */
  private take(): Waiting[] {
    const version = this.queue[0].version;
    const batch: Waiting[] = [];
    const rest: Waiting[] = [];
    let images = 0;
    for (const w of this.queue) {
      if (w.version === version && (batch.length === 0 || images + w.count <= this.opts.maxBatchSize)) {
        batch.push(w);
        images += w.count;
      } else rest.push(w);
    }
    this.queue = rest;
    this.queuedImages -= images;
    return batch;
  }

  private async run(batch: Waiting[]): Promise<void> {
    this.inFlight++;
    let release: (() => void) | undefined;
    try {
      const lease = await this.registry.acquire(batch[0].version);
      release = lease.release;
      const count = batch.reduce((n, w) => n + w.count, 0);
      let pixels = batch[0].pixels;
      if (batch.length > 1) {
        pixels = new Uint8Array(count * DIGIT_PIXELS);
        let at = 0;
        for (const w of batch) {
          pixels.set(w.pixels, at);
          at += w.pixels.length;
        }
      }
      const started = performance.now();
      const { probabilities, seconds } = await this.engine.predict(lease.handle, pixels, count);
      release();
      release = undefined;
      const answered = performance.now();
      const confidences: number[] = [];
      let first = 0;
      for (const w of batch) {
        const predictions = toPredictions(probabilities.subarray(first * NUM_CLASSES, (first + w.count) * NUM_CLASSES), w.count);
        for (const p of predictions) confidences.push(p.confidence);
        w.resolve({ modelVersion: lease.version, predictions });
        first += w.count;
      }
      this.observer?.onBatch({
        version: lease.version,
        engine: lease.handle.engine,
        images: count,
        queueSeconds: batch.map((w) => (started - w.arrived) / 1000),
        modelSeconds: seconds,
        requestSeconds: batch.map((w) => (answered - w.arrived) / 1000),
        confidences,
      });
    } catch (err) {
      for (const w of batch) w.reject(err as Error);
    } finally {
      release?.();
      this.inFlight--;
      if (this.queue.length > 0) this.flush(); // they have waited a whole batch already
    }
  }
}

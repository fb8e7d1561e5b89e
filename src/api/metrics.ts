import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BatchObserver, BatchReport } from '../serving/batcher.ts';

export interface MetricsSources {
  /** BullMQ's job counts by state (`queue.getJobCounts()`), read at scrape time. */
  jobCounts?: () => Promise<Record<string, number>>;
}

/**
 * The API process's Prometheus metrics, in a registry of its own (not prom-client's global one) so
 * several apps in one process — tests — do not collide. Names follow Prometheus conventions:
 * seconds, `_total` counters, labels of bounded cardinality (route patterns, not URLs).
 */
export class ApiMetrics implements BatchObserver {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request received to response sent, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly predictions = new Counter({
    name: 'mnist_predictions_total',
    help: 'Images classified, by the model version that classified them and the engine that ran it (onnxruntime or tfjs)',
    labelNames: ['model_version', 'engine'] as const,
    registers: [this.registry],
  });

  readonly batchSize = new Histogram({
    name: 'mnist_predict_batch_size',
    help: 'Images per model call (concurrent requests are batched together)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });

  readonly modelSeconds = new Histogram({
    name: 'mnist_predict_model_seconds',
    help: 'Time the model computed per model call, in its inference thread, by engine (onnxruntime or tfjs); a request\'s latency beyond this is parsing, queueing and batching. The sum over time is how busy inference is',
    labelNames: ['engine'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5],
    registers: [this.registry],
  });

  readonly queueSeconds = new Histogram({
    name: 'mnist_predict_queue_seconds',
    help: 'Time each predict request waited between reaching the batcher and its model call starting (TF Serving\'s batching queuing latency): for a free inference thread, for others to join its batch, or for its version to load',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly predictSeconds = new Histogram({
    name: 'mnist_predict_request_seconds',
    help: 'Time each predict request spent from reaching the batcher to its answer (queue + model), by the model version that answered and its engine: compare a canary with the served version',
    labelNames: ['model_version', 'engine'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly confidence = new Histogram({
    name: 'mnist_prediction_confidence',
    help: 'Probability of the predicted digit, per image, by model version and engine: a canary that is less sure of itself than the served version shows here before any label does',
    labelNames: ['model_version', 'engine'] as const,
    buckets: [0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999],
    registers: [this.registry],
  });

  readonly jobDuration = new Histogram({
    name: 'mnist_training_job_duration_seconds',
    help: 'Run time (start to finish) of training jobs that finished while this API process was up, by outcome; every API replica observes every job',
    labelNames: ['outcome'] as const,
    buckets: [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
    registers: [this.registry],
  });

  constructor(sources: MetricsSources = {}) {
    collectDefaultMetrics({ register: this.registry });
    const { jobCounts } = sources;
    new Gauge({
      name: 'mnist_training_jobs',
      help: 'Training jobs in the queue by BullMQ state (waiting, active, completed, failed, delayed, …), read from Redis at scrape time',
      labelNames: ['state'] as const,
      registers: [this.registry],
      async collect() {
        if (!jobCounts) return;
        this.reset();
        // Redis away: no job series in this scrape (rather than a failed scrape; the rest still counts).
        const counts = await jobCounts().catch(() => ({}));
        for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
      },
    });
  }

  onBatch({ version, engine, images, queueSeconds, modelSeconds, requestSeconds, confidences }: BatchReport): void {
    const labels = { model_version: String(version), engine };
    this.predictions.inc(labels, images);
    this.batchSize.observe(images);
    this.modelSeconds.observe({ engine }, modelSeconds);
    for (const seconds of queueSeconds) this.queueSeconds.observe(seconds);
    // The labelled series looked up once per batch, not once per image.
    const latency = this.predictSeconds.labels(labels);
    for (const seconds of requestSeconds) latency.observe(seconds);
    const confidence = this.confidence.labels(labels);
    for (const c of confidences) confidence.observe(c);
  }

  /** A finished job's run time, from BullMQ's processedOn/finishedOn (ms since the epoch). */
  observeJob(outcome: 'completed' | 'failed', processedOn: number | undefined, finishedOn: number | undefined): void {
    if (processedOn && finishedOn && finishedOn >= processedOn) this.jobDuration.observe({ outcome }, (finishedOn - processedOn) / 1000);
  }
}

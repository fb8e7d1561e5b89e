import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { JobEventsHub } from '../queue/job-events-hub.ts';
import { JobService } from '../queue/job-service.ts';
import { feedbackFinetuneTrigger } from '../queue/feedback-finetune-trigger.ts';
import { jobRetentionOptions } from '../queue/job-retention.ts';
import { jobAttemptOptions } from '../queue/job-attempts.ts';
import { redisKeys } from '../redis/keys.ts';
import { modelJobsQueue, trainingQueue } from '../queue/queues.ts';
import { createRedis, isRedisConnectionError, logConnectionState } from '../redis/connection.ts';
import { PredictBatcher } from '../serving/batcher.ts';
import { DECODE_THREADS, DecodePool } from '../serving/decode-pool.ts';
import { InferencePool } from '../serving/inference-pool.ts';
import { ModelRegistry } from '../serving/model-registry.ts';
import { reportServedVersion } from '../redis/served-versions.ts';
import { RedisPinStore } from '../redis/serving-pin.ts';
import { RedisCanaryStore } from '../redis/serving-canary.ts';
import { followModelChanges } from '../serving/model-changes.ts';
import { DatasetStore } from '../store/dataset-store.ts';
import { CORRECTION_BYTES, FeedbackStore } from '../redis/feedback-store.ts';
import { PredictionLog } from '../redis/prediction-log.ts';
import { ModelStore } from '../store/model-store.ts';
import { buildApp, type App } from './app.ts';
import { ApiMetrics } from './metrics.ts';

export interface RunningApi {
  app: App;
  close: () => Promise<void>;
}

/** Wires Redis, the queue, the model store and the registry into the HTTP app (not listening yet). */
export async function createApi(config: Config, log: Logger): Promise<RunningApi> {
  const keys = redisKeys(config.QUEUE_PREFIX);
  const redis = createRedis(config.REDIS_URL, 'client');
  const subscriber = createRedis(config.REDIS_URL, 'subscriber');
  logConnectionState(redis, 'client', log);
  logConnectionState(subscriber, 'subscriber', log);

  // Finished jobs stay readable (history, errors) for JOB_RETENTION_SECONDS / JOB_RETENTION_COUNT.
  const queue = trainingQueue(redis, config.QUEUE_PREFIX, { ...jobRetentionOptions(config), ...jobAttemptOptions(config) });
  const modelQueue = modelJobsQueue(redis, config.QUEUE_PREFIX, jobRetentionOptions(config));
  // Without a listener BullMQ prints each error to stderr; connection errors are logged above already.
  for (const q of [queue, modelQueue]) q.on('error', (err) => isRedisConnectionError(err) || log.warn({ err: err.message }, 'queue error'));
  const modelStore = new ModelStore(config.modelsDir);
  const feedback = new FeedbackStore(redis, keys.feedback);
  // Corrections count against the datasets' quota: they are training data users send, kept in Redis.
  const datasetStore = new DatasetStore(config.datasetsDir, config.DATASETS_MAX_BYTES, async () => (await feedback.count()) * CORRECTION_BYTES);
  // The prediction log writes a pipeline every few ms under load, on a connection of its own: ioredis
  // copies every script defined on a connection (BullMQ's 64, on `redis`) into each pipeline it
  // makes, ~50 µs a pipeline on the event loop, and commands queued on such a pipeline are slower.
  const predictionRedis = createRedis(config.REDIS_URL, 'client');
  logConnectionState(predictionRedis, 'predictions', log);
  const predictionLog = new PredictionLog(predictionRedis, keys.predictions, { windowSeconds: config.FEEDBACK_WINDOW_SECONDS, maxImages: config.FEEDBACK_WINDOW_MAX_IMAGES }, log);
  const jobs = new JobService(queue, modelQueue, redis, keys, config.MAX_QUEUED_JOBS);

  const [engine, decodePool] = await Promise.all([InferencePool.start(config.PREDICT_WORKERS, config.TF_BACKEND, log, config.INFERENCE_ENGINE), DecodePool.start({ size: DECODE_THREADS, log, maxQueuedPixels: config.PREDICT_MAX_QUEUED_PIXELS })]);
  const registry = new ModelRegistry(modelStore, engine, log, {
    cacheSize: config.MODEL_CACHE_SIZE,
    pins: new RedisPinStore(redis, keys.modelPin, keys.modelEvents),
    canaries: new RedisCanaryStore(redis, keys.modelCanary, keys.modelEvents),
    policy: config.SERVING_POLICY,
    tolerance: config.PROMOTION_TOLERANCE,
  });
  const metrics = new ApiMetrics({ jobCounts: () => queue.getJobCounts() });
  const batcher = new PredictBatcher(registry, engine, { maxBatchSize: config.PREDICT_MAX_BATCH_SIZE, timeoutMs: config.PREDICT_BATCH_TIMEOUT_MS, maxQueuedImages: config.PREDICT_MAX_QUEUED_IMAGES }, metrics);

  await registry.refresh();
  // Tells the workers' model retention which versions this replica serves (the canary too), so they are never deleted.
  const servedReport = reportServedVersion({ redis, key: keys.modelServed, servedVersions: () => registry.defaultVersions, log });
  void servedReport.report();
  const stopFollowing = await followModelChanges({
    subscriber,
    channel: keys.modelEvents,
    dir: config.modelsDir,
    pollMs: config.MODEL_POLL_MS,
    onChange: () => void registry.refresh().then(() => servedReport.report()),
    log,
  });

  // One reader of BullMQ's event stream (it blocks a connection of its own): job durations for
  // /metrics and the job event streams. Started now, so the metrics count jobs from start-up.
  const jobEvents = new JobEventsHub({ client: redis, redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX, log });
  jobEvents.onFinished((jobId, outcome) => {
    void queue.getJob(jobId).then((job) => job && metrics.observeJob(outcome, job.processedOn, job.finishedOn), () => undefined);
  });
  void jobEvents.ready();

  const onCorrections = feedbackFinetuneTrigger({
    every: config.FEEDBACK_FINETUNE_EVERY,
    redis,
    keys: keys.feedbackTrigger,
    jobs,
    modelStore,
    datasetStore,
    feedback,
    maxSeconds: config.JOB_MAX_SECONDS,
    servedVersion: () => registry.servedVersion,
    log,
  });
  const app = await buildApp(
    { config, jobs, jobEvents, modelStore, datasetStore, registry, batcher, decodePool, metrics, redis, predictionLog, feedback, onCorrections: (n) => void onCorrections(n) },
    { loggerInstance: log },
  );
  return {
    app,
    close: async () => {
      await stopFollowing();
      await app.close();
      await Promise.allSettled([queue.close(), modelQueue.close(), jobEvents.close()]);
      await servedReport.stop();
      registry.dispose();
      await Promise.all([engine.close(), decodePool.close()]);
      await Promise.allSettled([subscriber.quit(), redis.quit(), predictionRedis.quit()]);
    },
  };
}

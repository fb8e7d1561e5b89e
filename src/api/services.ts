import type { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import type { JobEventsHub } from '../queue/job-events-hub.ts';
import type { JobService } from '../queue/job-service.ts';
import type { PredictBatcher } from '../serving/batcher.ts';
import type { DecodePool } from '../serving/decode-pool.ts';
import type { ModelRegistry } from '../serving/model-registry.ts';
import type { DatasetStore } from '../store/dataset-store.ts';
import type { FeedbackStore } from '../redis/feedback-store.ts';
import type { PredictionLog } from '../redis/prediction-log.ts';
import type { ModelStore } from '../store/model-store.ts';
import type { ApiMetrics } from './metrics.ts';

/** What the routes need from the rest of the service; built by createApi (start-api.ts), or by a test. */
export interface ApiServices {
  config: Config;
  jobs: JobService;
  /** The training queue's events, read once per process (job event streams, job metrics). */
  jobEvents: JobEventsHub;
  modelStore: ModelStore;
  datasetStore: DatasetStore;
  registry: ModelRegistry;
  batcher: PredictBatcher;
  /** PNG decoding and dataset uploads, off the event loop. */
  decodePool: DecodePool;
  metrics: ApiMetrics;
  /** Recently predicted images, by prediction id, for corrections. */
  predictionLog: PredictionLog;
  /** Corrections (POST /v1/feedback). */
  feedback: FeedbackStore;
  /** Told of every request that stored new or relabelled corrections (FEEDBACK_FINETUNE_EVERY). */
  onCorrections?: (count: number) => void;
  redis: Redis;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: ApiServices;
  }
}

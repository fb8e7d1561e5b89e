import type { JobType as BullJobState } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { redisKeys } from '../redis/keys.ts';
import { trainingQueue, type TrainingQueue } from '../queue/queues.ts';
import { isRedisConnectionError } from '../redis/connection.ts';
import { readServedVersions } from '../redis/served-versions.ts';
import { RedisPinStore } from '../redis/serving-pin.ts';
import { RedisCanaryStore } from '../redis/serving-canary.ts';
import type { ModelStore } from '../store/model-store.ts';
import { pruneModelVersions } from '../store/retention.ts';

/** Where the versions that must survive retention are learnt; any that throws cancels the run. */
export type ProtectedVersions = () => Promise<number[]>;

/** Jobs not yet finished: a fine-tune among them still needs its base version. */
const UNFINISHED: BullJobState[] = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'];

/**
 * The versions in use, from Redis: the pinned one, the canary, those API replicas report serving, and the base
 * version of every fine-tune job not yet finished.
 */
export function protectedVersionsFromRedis(redis: Redis, queue: TrainingQueue, prefix: string): ProtectedVersions {
  const keys = redisKeys(prefix);
  const pins = new RedisPinStore(redis, keys.modelPin, keys.modelEvents);
  const canaries = new RedisCanaryStore(redis, keys.modelCanary, keys.modelEvents);
  return async () => {
    const [pinned, canary, served, jobs] = await Promise.all([pins.get(), canaries.get(), readServedVersions(redis, keys.modelServed), queue.getJobs(UNFINISHED)]);
    const bases = jobs.flatMap((job) => (job?.data.type === 'finetune' && Number.isInteger(job.data.baseModel) ? [job.data.baseModel] : []));
    return [...(pinned === undefined ? [] : [pinned]), ...(canary ? [canary.version] : []), ...served, ...bases];
  };
}

export interface ModelPruner {
  /** Applies retention now; calls during a run coalesce into one more run. Never throws. */
  run(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Model retention (`MODEL_KEEP_LAST`), run by the workers — at start-up and after each job — as
 * they are what adds versions. Fails closed: if the versions in use cannot be read (Redis away),
 * nothing is deleted this time.
 */
export function createModelPruner(opts: { store: ModelStore; keepLast: number; inUse: ProtectedVersions; log: Logger; close?: () => Promise<void> }): ModelPruner {
  const { store, keepLast, inUse, log } = opts;
  let running: Promise<void> | undefined;
  let again = false;
  const once = async () => {
    let protect: number[];
    try {
      protect = await inUse();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'model retention skipped: could not read which versions are in use');
      return;
    }
    try {
      const deleted = await pruneModelVersions(store, { keepLast, protect });
      if (deleted.length > 0) log.info({ deleted, keepLast, protected: [...new Set(protect)] }, 'old model versions deleted (MODEL_KEEP_LAST)');
    } catch (err) {
      log.error({ err }, 'model retention failed');
    }
  };
  const run = (): Promise<void> => {
    if (keepLast === 0) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await once();
        } while (again);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  return {
    run,
    close: async () => {
      await running;
      await opts.close?.();
    },
  };
}

/** The worker's pruner: reads what is in use from Redis with the worker's client connection. */
export function createWorkerModelPruner(config: Config, store: ModelStore, redis: Redis, log: Logger): ModelPruner {
  if (config.MODEL_KEEP_LAST === 0) return createModelPruner({ store, keepLast: 0, inUse: async () => [], log });
  const queue = trainingQueue(redis, config.QUEUE_PREFIX);
  queue.on('error', (err) => isRedisConnectionError(err) || log.warn({ err: err.message }, 'queue error')); // else BullMQ prints each to stderr
  return createModelPruner({
    store,
    keepLast: config.MODEL_KEEP_LAST,
    inUse: protectedVersionsFromRedis(redis, queue, config.QUEUE_PREFIX),
    log,
    close: () => queue.close(),
  });
}

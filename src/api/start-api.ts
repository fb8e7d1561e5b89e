import { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { JobService } from '../queue/job-service.ts';
import { TRAINING_QUEUE, redisKeys } from '../queue/names.ts';
import { createRedis } from '../queue/redis.ts';
import { ModelRegistry } from '../serving/model-registry.ts';
import { subscribeVersions } from '../store/model-events.ts';
import { DatasetStore } from '../store/dataset-store.ts';
import { ModelStore } from '../store/model-store.ts';
import { buildApp, type App } from './app.ts';

export interface RunningApi {
  app: App;
  close: () => Promise<void>;
}

/** Wires Redis, the queue, the model store and the registry into the HTTP app (not listening yet). */
export async function createApi(config: Config, log: Logger): Promise<RunningApi> {
  const keys = redisKeys(config.QUEUE_PREFIX);
  const redis = createRedis(config.REDIS_URL, 'client');
  const subscriber = createRedis(config.REDIS_URL, 'subscriber');
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis client error'));
  subscriber.on('error', (err) => log.warn({ err: err.message }, 'redis subscriber error'));

  const queue = new Queue(TRAINING_QUEUE, {
    connection: redis,
    prefix: config.QUEUE_PREFIX,
    // Finished jobs stay a week (and at most 1000 of each) so their history and errors can be read.
    defaultJobOptions: { removeOnComplete: { age: 7 * 24 * 3600, count: 1000 }, removeOnFail: { age: 7 * 24 * 3600, count: 1000 } },
  });
  const modelStore = new ModelStore(config.modelsDir);
  const datasetStore = new DatasetStore(config.datasetsDir);
  const registry = new ModelRegistry(modelStore, log);
  const jobs = new JobService(queue, redis, keys);

  await registry.refresh();
  await subscribeVersions(subscriber, keys.modelEvents, (version) => {
    log.info({ version }, 'model version announced');
    void registry.refresh();
  });
  // Pub/sub is fire-and-forget; a poll catches a version announced while we were disconnected.
  const poll = config.MODEL_POLL_MS > 0 ? setInterval(() => void registry.refresh(), config.MODEL_POLL_MS).unref() : undefined;

  const app = await buildApp({ config, jobs, modelStore, datasetStore, registry, redis }, { loggerInstance: log });
  return {
    app,
    close: async () => {
      if (poll) clearInterval(poll);
      await app.close();
      await queue.close();
      registry.dispose();
      await Promise.allSettled([subscriber.quit(), redis.quit()]);
    },
  };
}

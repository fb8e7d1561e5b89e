import { Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { JOB_TYPES, TRAINING_QUEUE, redisKeys, type JobType } from '../queue/names.ts';
import { createRedis } from '../queue/redis.ts';
import { publishVersion } from '../store/model-events.ts';
import { ModelStore } from '../store/model-store.ts';
import { createTrainingProcessor } from './training-processor.ts';
import type { ToTrainer } from './training-messages.ts';

type Handler = (job: Job, token?: string, signal?: AbortSignal) => Promise<unknown>;

/** Refuses to start when a job type has no handler, so a new type cannot silently pile up in Redis. */
export function checkHandlers(handlers: Record<string, Handler>): void {
  const missing = JOB_TYPES.filter((t) => typeof handlers[t] !== 'function');
  const unknown = Object.keys(handlers).filter((t) => !(JOB_TYPES as readonly string[]).includes(t));
  if (missing.length || unknown.length) throw new Error(`job handlers out of sync: missing [${missing}] unknown [${unknown}]`);
}

export interface RunningWorker {
  worker: Worker;
  close: () => Promise<void>;
}

export async function startWorker(config: Config, log: Logger, backend: Extract<ToTrainer, { type: 'start' }>['backend']): Promise<RunningWorker> {
  const keys = redisKeys(config.QUEUE_PREFIX);
  const store = new ModelStore(config.modelsDir);
  const stale = await store.removeStaleTemp(60 * 60 * 1000);
  if (stale.length) log.warn({ removed: stale }, 'removed temporary model directories left by a crashed writer');

  const client = createRedis(config.REDIS_URL, 'client');
  const subscriber = createRedis(config.REDIS_URL, 'subscriber');
  const connection = createRedis(config.REDIS_URL, 'worker');

  // Training and fine-tuning share one processor: both run a child process and write a version.
  const training = createTrainingProcessor({
    store,
    datasetsDir: config.datasetsDir,
    backend,
    log,
    isCancelled: async (id) => (await client.sismember(keys.cancelled, id)) === 1,
    publishVersion: (version) => publishVersion(client, keys.modelEvents, version),
  });
  const handlers: Record<JobType, Handler> = { train: training, finetune: training };
  checkHandlers(handlers);

  const worker = new Worker(
    TRAINING_QUEUE,
    async (job, token, signal) => {
      const handler = handlers[job.name as JobType];
      if (!handler) throw new Error(`no handler for job type ${job.name}`);
      return handler(job, token, signal);
    },
    { connection, prefix: config.QUEUE_PREFIX, concurrency: config.WORKER_CONCURRENCY, autorun: false },
  );
  worker.on('error', (err) => log.error({ err }, 'worker error'));
  worker.on('failed', (job, err) => log.warn({ jobId: job?.id, reason: err.message }, 'job failed'));
  worker.on('completed', (job) => log.info({ jobId: job.id, result: job.returnvalue }, 'job succeeded'));

  // Cancellation reaches the one process running the job through pub/sub (the API cannot call
  // worker.cancelJob across processes).
  subscriber.on('message', (channel: string, jobId: string) => {
    if (channel === keys.cancelChannel && worker.cancelJob(jobId, 'cancelled by request')) log.info({ jobId }, 'cancelling job');
  });
  await subscriber.subscribe(keys.cancelChannel);

  void worker.run();
  await worker.waitUntilReady();
  log.info({ queue: TRAINING_QUEUE, concurrency: config.WORKER_CONCURRENCY }, 'worker ready');

  return {
    worker,
    close: async () => {
      await worker.close();
      await Promise.allSettled([subscriber.quit(), client.quit(), connection.quit()]);
    },
  };
}

import { hostname } from 'node:os';
import type { Job, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { redisKeys } from '../redis/keys.ts';
import { modelJobsQueue, modelJobsWorker, MODEL_JOBS_QUEUE, TRAINING_QUEUE, trainingQueue, trainingWorker, type TrainingJobPayload } from '../queue/queues.ts';
import { JOB_TYPES, type JobType } from '../schemas/jobs.ts';
import { pruneJobKeys, workerJobRetention } from '../queue/job-retention.ts';
import { jobRequestId, type ModelJobResult, type TrainJobResult } from '../queue/job-data.ts';
import { CANCELLED_REASON } from '../queue/job-view.ts';
import { createRedis, isRedisConnectionError, logConnectionState } from '../redis/connection.ts';
import { publishVersion } from '../redis/model-events.ts';
import { FeedbackStore } from '../redis/feedback-store.ts';
import { CheckpointStore } from '../store/checkpoint-store.ts';
import { ImportStaging, importStagingDir } from '../store/import-staging.ts';
import { ModelStore } from '../store/model-store.ts';
import { checkpointsDir, sweepCheckpoints } from './checkpointing.ts';
import { createWorkerModelPruner } from './model-pruner.ts';
import { STOP_REASONS, createJobProcessor } from './job-processor.ts';
import { createModelJobProcessor } from './model-job-processor.ts';
import { backfillOnnx } from './onnx-backfill.ts';
import { runInSandbox } from './sandbox/fork.ts';
import type { BackendName } from '../config.ts';

/** How long a worker holds its claim on exporting one older version to ONNX (and the export's time budget). */
const ONNX_CLAIM_SECONDS = 600;

/** The job keys are pruned at most this often, as jobs finish. */
const KEY_PRUNE_INTERVAL_MS = 60_000;

type Handler = (job: Job, token?: string, signal?: AbortSignal) => Promise<TrainJobResult | ModelJobResult>;

/** Refuses to start when a job type has no handler, so a new type cannot silently pile up in Redis. */
export function checkHandlers(handlers: Record<string, Handler>): void {
  const missing = JOB_TYPES.filter((t) => typeof handlers[t] !== 'function');
  const unknown = Object.keys(handlers).filter((t) => !(JOB_TYPES as readonly string[]).includes(t));
  if (missing.length || unknown.length) throw new Error(`job handlers out of sync: missing [${missing}] unknown [${unknown}]`);
}

export interface RunningWorker {
  worker: Worker<TrainingJobPayload, TrainJobResult, JobType>;
  /** Waits for the running jobs to finish, then closes. */
  close: () => Promise<void>;
  /**
   * For SIGTERM: running jobs save a checkpoint after their current batch and go back to the queue
   * (no attempt counted), then the worker closes. False if that took longer than `timeoutMs`.
   */
  shutdown: (timeoutMs: number) => Promise<boolean>;
}

export async function startWorker(config: Config, log: Logger, backend: BackendName): Promise<RunningWorker> {
  const keys = redisKeys(config.QUEUE_PREFIX);
  const store = new ModelStore(config.modelsDir);
  const stale = await store.removeStaleTemp(60 * 60 * 1000);
  if (stale.length) log.warn({ removed: stale }, 'removed temporary model directories left by a crashed writer');

  const client = createRedis(config.REDIS_URL, 'client');
  const subscriber = createRedis(config.REDIS_URL, 'subscriber');
  const connection = createRedis(config.REDIS_URL, 'worker');
  const modelConnection = createRedis(config.REDIS_URL, 'worker');
  // A Redis outage is logged once each way per connection, not at every reconnect attempt (nor as "unhandled").
  for (const [name, c] of [['client', client], ['subscriber', subscriber], ['worker', connection], ['model jobs', modelConnection]] as const) logConnectionState(c, name, log);
  const checkpoints = new CheckpointStore(checkpointsDir(config));
  const staging = new ImportStaging(importStagingDir(config));
  const jobs = trainingQueue(client, config.QUEUE_PREFIX);
  const modelJobs = modelJobsQueue(client, config.QUEUE_PREFIX);
  for (const q of [jobs, modelJobs]) q.on('error', (err) => isRedisConnectionError(err) || log.warn({ err: err.message }, 'queue error')); // else BullMQ prints each to stderr

  const common = {
    store,
    datasetsDir: config.datasetsDir,
    backend,
    log,
    isCancelled: async (id: string) => (await client.sismember(keys.cancelled, id)) === 1,
    publishVersion: (version: number) => publishVersion(client, keys.modelEvents, version),
    maxSeconds: config.JOB_MAX_SECONDS,
    maxRssBytes: config.JOB_MAX_RSS_MB * 2 ** 20,
    testLimit: config.MNIST_TEST_LIMIT,
  };
  // Training and fine-tuning share one processor: both run a child process and write a version.
  const feedback = new FeedbackStore(client, keys.feedback);
  const training = createJobProcessor({
    ...common,
    checkpoints,
    maxStalls: config.JOB_MAX_STALLS,
    readCorrections: (range) => feedback.load(range),
    maxMnistDrop: config.PROMOTION_MAX_MNIST_DROP,
  });
  const modelJob = createModelJobProcessor({ ...common, staging, budget: { maxActivations: config.IMPORT_MAX_ACTIVATIONS, maxMacs: config.IMPORT_MAX_MACS } });
  const handlers: Record<JobType, Handler> = { train: training, finetune: training, import: modelJob, evaluate: modelJob };
  checkHandlers(handlers);
  const dispatch = (job: Job, token?: string, signal?: AbortSignal) => {
    const handler = handlers[job.name as JobType];
    if (!handler) throw new Error(`no handler for job type ${job.name}`);
    return handler(job, token, signal);
  };

  const worker = trainingWorker(
    async (job, token, signal) => (await dispatch(job, token, signal)) as TrainJobResult,
    // Retention for jobs queued without it (the API sets it on each job, which takes precedence).
    {
      connection,
      prefix: config.QUEUE_PREFIX,
      concurrency: config.WORKER_CONCURRENCY,
      autorun: false,
      ...workerJobRetention(config),
      // Recorded as the job's processedBy, so an operator (or a test) can tell which worker runs it.
      name: `${hostname()}:${process.pid}`,
      // A dead worker's job is back in the queue JOB_LOCK_MS (+ up to two checks) after it died,
      // and resumes from its checkpoint. The processor fails a job found stalled more than
      // JOB_MAX_STALLS times, with the reason; BullMQ's own limit (one more) is only a backstop.
      lockDuration: config.JOB_LOCK_MS,
      stalledInterval: config.JOB_STALLED_CHECK_MS,
      maxStalledCount: config.JOB_MAX_STALLS + 1,
    },
  );
  worker.on('error', (err) => isRedisConnectionError(err) || log.error({ err }, 'worker error'));
  worker.on('failed', (job, err) => {
    const ids = { jobId: job?.id, requestId: jobRequestId(job?.data) };
    if (err.message === CANCELLED_REASON) log.info(ids, 'job cancelled');
    else log.warn({ ...ids, reason: err.message }, 'job failed');
  });
  worker.on('stalled', (jobId) => log.warn({ jobId }, 'job stalled (its worker died or lost touch with Redis); back in the queue to resume from its checkpoint'));
  // The lock is someone else's now (the job was found stalled and requeued): stop training it here.
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const jobId of jobIds) if (worker.cancelJob(jobId, STOP_REASONS.lockLost)) log.warn({ jobId }, 'lost the lock of a running job; stopping it');
  });
  // A job failed for good keeps no checkpoint (the processor removes it too, but not on BullMQ's own failures).
  worker.on('failed', (job) => {
    if (job?.id) void sweepCheckpointOf(job.id);
  });
  const sweepCheckpointOf = async (jobId: string) => {
    try {
      if ((await jobs.getJobState(jobId)) === 'failed') await checkpoints.remove(jobId);
    } catch (err) {
      log.warn({ err, jobId }, 'could not check whether a checkpoint is still needed');
    }
  };
  worker.on('completed', (job) => log.info({ jobId: job.id, requestId: jobRequestId(job.data), result: job.returnvalue }, 'job succeeded'));
  // Model retention (MODEL_KEEP_LAST) after each job that may have added a version, and at start-up.
  const pruner = createWorkerModelPruner(config, store, client, log);
  worker.on('completed', () => void pruner.run());
  // The jobs index and the cancelled set follow BullMQ's job retention (which acts as jobs finish).
  let lastKeyPrune = 0;
  const pruneKeys = () => {
    if (Date.now() - lastKeyPrune < KEY_PRUNE_INTERVAL_MS) return;
    lastKeyPrune = Date.now();
    pruneJobKeys(client, keys, [jobs, modelJobs]).then(
      (dropped) => dropped > 0 && log.info({ dropped }, 'dropped ids of removed jobs from the jobs index and the cancelled set'),
      (err: Error) => isRedisConnectionError(err) || log.warn({ err: err.message }, 'could not prune the job keys'),
    );
  };


  // Imports and evaluations: short, on their own queue (never behind a training run), one at a time.
  const modelWorker = modelJobsWorker(async (job) => dispatch(job) as Promise<ModelJobResult>, {
    connection: modelConnection,
    prefix: config.QUEUE_PREFIX,
    concurrency: 1,
    autorun: false,
    ...workerJobRetention(config),
    name: `${hostname()}:${process.pid}`,
    lockDuration: config.JOB_LOCK_MS,
    stalledInterval: config.JOB_STALLED_CHECK_MS,
  });
  modelWorker.on('error', (err) => isRedisConnectionError(err) || log.error({ err }, 'model jobs worker error'));
  modelWorker.on('failed', (job, err) => log.warn({ jobId: job?.id, requestId: jobRequestId(job?.data), reason: err.message }, 'job failed'));
  modelWorker.on('completed', (job) => log.info({ jobId: job.id, requestId: jobRequestId(job.data) }, 'job succeeded'));
  modelWorker.on('completed', (job) => job.name === 'import' && void pruner.run());
  for (const event of ['completed', 'failed'] as const) {
    worker.on(event, pruneKeys);
    modelWorker.on(event, pruneKeys);
  }

  // Cancellation reaches the one process running the job through pub/sub (the API cannot call
  // worker.cancelJob across processes).
  subscriber.on('message', (channel: string, jobId: string) => {
    if (channel === keys.cancelChannel && worker.cancelJob(jobId, 'cancelled by request')) log.info({ jobId }, 'cancelling job');
  });
  await subscriber.subscribe(keys.cancelChannel);

  const swept = await sweepCheckpoints(checkpoints, (id) => jobs.getJobState(id)).catch((err) => {
    log.warn({ err }, 'could not sweep old checkpoints');
    return [];
  });
  if (swept.length) log.info({ jobIds: swept }, 'removed checkpoints of jobs that have ended');
  await sweepStaging(staging, (id) => modelJobs.getJobState(id)).catch((err) => log.warn({ err }, 'could not sweep staged uploads'));

  pruneKeys();
  void worker.run();
  void modelWorker.run();
  await Promise.all([worker.waitUntilReady(), modelWorker.waitUntilReady()]);
  void pruner.run();
  log.info({ queues: [TRAINING_QUEUE, MODEL_JOBS_QUEUE], concurrency: config.WORKER_CONCURRENCY }, 'worker ready');

  // Versions from before model.onnx get theirs, one sandboxed export at a time beside the jobs.
  const backfillStop = new AbortController();
  const backfill = backfillOnnx({
    store,
    log,
    signal: backfillStop.signal,
    claim: async (version) => (await client.set(`${keys.onnxBackfill}:${version}`, `${hostname()}:${process.pid}`, 'EX', ONNX_CLAIM_SECONDS, 'NX')) === 'OK',
    exportVersion: async (version) => {
      const result = await runInSandbox(
        { params: { type: 'export-onnx', version }, backend, paths: { modelsDir: store.root, datasetsDir: config.datasetsDir }, testLimit: config.MNIST_TEST_LIMIT },
        () => undefined,
        { maxRssBytes: config.JOB_MAX_RSS_MB * 2 ** 20, timeBudget: { seconds: ONNX_CLAIM_SECONDS, endsAt: Date.now() + ONNX_CLAIM_SECONDS * 1000 } },
      );
      if (result.kind !== 'onnx') throw new Error(`the export gave back ${result.kind}`);
      return result;
    },
    // Every API replica looks again, and moves the version onto ONNX Runtime if it serves it.
    announce: (version) => publishVersion(client, keys.modelEvents, version),
  }).catch((err: Error) => {
    if (!isRedisConnectionError(err)) log.warn({ err: err.message }, 'ONNX backfill stopped');
    return [];
  });

  const close = async () => {
    backfillStop.abort();
    await Promise.all([worker.close(), modelWorker.close(), backfill]);
    await pruner.close();
    await Promise.allSettled([jobs.close(), modelJobs.close()]);
    await Promise.allSettled([subscriber.quit(), client.quit(), connection.quit(), modelConnection.quit()]);
  };
  return {
    worker,
    close,
    shutdown: async (timeoutMs) => {
      const closed = close(); // first, so that no job is fetched any more
      worker.cancelAllJobs(STOP_REASONS.shutdown);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      try {
        return await Promise.race([closed.then(() => true as const), timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Removes staged uploads whose import job has ended or is gone (a worker died before removing one). */
async function sweepStaging(staging: ImportStaging, jobState: (jobId: string) => Promise<string>): Promise<void> {
  for (const jobId of await staging.list()) {
    if (['completed', 'failed', 'unknown'].includes(await jobState(jobId))) await staging.remove(jobId);
  }
}

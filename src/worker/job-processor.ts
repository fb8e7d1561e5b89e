import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { BackendName } from '../config.ts';
import { TrainingCancelledError, TrainingPausedError } from '../ml/train.ts';
import { InvalidJobDataError, jobRequestId, parseJobData, type FinetuneJobData, type JobProgressRecord, type TrainJobResult } from '../queue/job-data.ts';
import type { LabelledImages } from '../data/labelled-images.ts';
import { MIN_CORRECTIONS } from '../schemas/jobs.ts';
import { CANCELLED_REASON } from '../queue/job-view.ts';
import type { CheckpointStore } from '../store/checkpoint-store.ts';
import type { ModelStore } from '../store/model-store.ts';
import { findVersionOfJob } from './job-version.ts';
import { runInSandbox, SandboxLimitError } from './sandbox/fork.ts';

/** Why BullMQ's signal of a running job was aborted, besides a cancel request. */
export const STOP_REASONS = {
  /** The worker is shutting down: checkpoint, give the job back to the queue. */
  shutdown: 'worker shutting down',
  /** Another worker may run the job now: stop without touching it. */
  lockLost: 'job lock lost',
} as const;

export interface JobProcessorDeps {
  store: ModelStore;
  /** Where each job's training checkpoints live (shared by the workers, like the models). */
  checkpoints: CheckpointStore;
  datasetsDir: string;
  backend: BackendName;
  log: Logger;
  isCancelled: (jobId: string) => Promise<boolean>;
  publishVersion: (version: number) => Promise<void>;
  /** Times a job may be found stalled (its worker died) and resumed before it fails (JOB_MAX_STALLS). */
  maxStalls: number;
  /** Least time between two progress writes to Redis. */
  progressIntervalMs?: number;
  /** The longest a job may run (JOB_MAX_SECONDS): its maxDurationSeconds, at most this. */
  maxSeconds: number;
  /** A job's child process is killed past this resident size (JOB_MAX_RSS_MB). */
  maxRssBytes: number;
  /** The corrections labelled in (afterMs, untilMs], for fine-tunes on `"dataset": "feedback"` (from Redis). */
  readCorrections?: (range: { afterMs?: number; untilMs: number }) => Promise<LabelledImages>;
  /** PROMOTION_MAX_MNIST_DROP, the gate of versions tuned on corrections. */
  maxMnistDrop?: number;
  /** MNIST_TEST_LIMIT: how many MNIST test images score each new version. */
  testLimit?: number;
}

/**
 * The corrections a fine-tune on "feedback" trains on: those labelled after its `since` version was
 * written and before the job was queued, so a retried attempt sees the same ones (less any deleted).
 */
async function correctionsFor(params: FinetuneJobData, job: Pick<Job, 'timestamp'>, deps: JobProcessorDeps) {
  if (!deps.readCorrections) throw new UnrecoverableError('this worker cannot read corrections (no Redis)');
  let afterMs: number | undefined;
  if (params.since !== undefined) {
    const since = await deps.store.readMetadata(params.since).catch(() => {
      throw new UnrecoverableError(`since: version ${params.since} no longer exists, so which corrections came after it is unknown; queue the job again`);
    });
    afterMs = Date.parse(since.createdAt);
  }
  const data = await deps.readCorrections({ afterMs, untilMs: job.timestamp });
  if (data.count < MIN_CORRECTIONS) throw new UnrecoverableError(`only ${data.count} corrections are left to tune on (some were deleted); at least ${MIN_CORRECTIONS} are needed`);
  return {
    images: Buffer.from(data.images.buffer, data.images.byteOffset, data.images.byteLength).toString('base64'),
    labels: Buffer.from(data.labels).toString('base64'),
    count: data.count,
    maxMnistDrop: deps.maxMnistDrop ?? 0.005,
  };
}

/** A job's time budget, counted from when this attempt started: its own, capped by JOB_MAX_SECONDS. */
export function timeBudget(job: Pick<Job, 'processedOn'>, requested: number | undefined, maxSeconds: number) {
  const seconds = Math.min(requested ?? maxSeconds, maxSeconds);
  return { seconds, endsAt: (job.processedOn ?? Date.now()) + seconds * 1000 };
}

/**
 * The queue consumer for `train` and `finetune` jobs, "like an API route, but for the queue": validate, run the
 * use case in a child process, relay progress, write the version, announce it. The child saves a
 * checkpoint every epoch, so an attempt after a crash or a shutdown goes on from there.
 */
export function createJobProcessor(deps: JobProcessorDeps) {
  const interval = deps.progressIntervalMs ?? 500;
  return async (job: Job, token?: string, signal?: AbortSignal): Promise<TrainJobResult> => {
    // Every line about the job names it and the API request that queued it (X-Request-Id), end to end.
    const log = deps.log.child({ jobId: job.id, requestId: jobRequestId(job.data) });
    const jobId = job.id!;
    let params;
    try {
      params = parseJobData(job.data);
    } catch (err) {
      if (err instanceof InvalidJobDataError) throw new UnrecoverableError(err.message);
      throw err;
    }
    const giveUp = async (reason: string): Promise<never> => {
      await deps.checkpoints.remove(jobId).catch((err) => log.warn({ err }, 'could not remove the checkpoint'));
      throw new UnrecoverableError(reason);
    };
    if (await deps.isCancelled(jobId)) return giveUp(CANCELLED_REASON);
    // An earlier attempt may have written the version and died before the job was marked done.
    if (job.attemptsStarted > 1) {
      const existing = await findVersionOfJob(deps.store, jobId, job.timestamp);
      if (existing) {
        log.info({ version: existing.version }, 'the version of this job was written by an earlier attempt; completing with it');
        await deps.checkpoints.remove(jobId).catch(() => undefined);
        await deps.publishVersion(existing.version).catch(() => undefined);
        return { modelVersion: existing.version, metrics: { testAccuracy: existing.metrics.testAccuracy, testLoss: existing.metrics.testLoss } };
      }
    }

    if (job.stalledCounter > deps.maxStalls) {
      log.error({ stalls: job.stalledCounter }, 'job given up: its worker kept dying');
      return giveUp(
        `worker crashed ${job.stalledCounter} times while running this job (killed, out of memory, or out of touch with Redis for longer than JOB_LOCK_MS); given up after JOB_MAX_STALLS=${deps.maxStalls}`,
      );
    }

    // Our own controllers: a cancel request (BullMQ's signal or the marker checked while training),
    // a pause for a shutdown, or a stop because the lock went to another worker.
    const cancel = new AbortController();
    const pause = new AbortController();
    let lockLost = false;
    const onAbort = () => {
      if (signal?.reason === STOP_REASONS.shutdown) pause.abort();
      else {
        lockLost = signal?.reason === STOP_REASONS.lockLost;
        cancel.abort();
      }
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    const record: JobProgressRecord = { progress: null, history: [] };
    let lastWrite = 0;
    let lastCancelCheck = Date.now();
    let writing: Promise<unknown> = Promise.resolve();
    const flush = () => {
      lastWrite = Date.now();
      writing = writing.then(() => job.updateProgress({ ...record })).catch((err) => log.warn({ err }, 'progress update failed'));
    };

    log.info({ params, attempt: job.attemptsStarted, stalls: job.stalledCounter }, 'training started');
    const feedback = params.type === 'finetune' && params.dataset === 'feedback' ? await correctionsFor(params, job, deps) : undefined;
    if (feedback) log.info({ corrections: feedback.count, since: params.type === 'finetune' ? params.since : undefined }, 'fine-tuning on corrections');
    let result;
    try {
      result = await runInSandbox(
        { params, backend: deps.backend, paths: { modelsDir: deps.store.root, datasetsDir: deps.datasetsDir }, checkpoint: { dir: deps.checkpoints.root, jobId }, feedback, testLimit: deps.testLimit },
        (msg) => {
          if (msg.type === 'warning') return log.warn(msg.message);
          if (msg.type === 'resumed') {
            const { epochsDone, batchesDone, history } = msg.position;
            log.info({ epochsDone, batchesDone }, 'resuming from the checkpoint');
            record.history = history;
            record.resumedFromEpoch = epochsDone;
            return flush();
          }
          if (msg.type === 'batch') record.progress = msg.progress;
          if (msg.type === 'epoch') {
            record.history.push(msg.stats);
            log.info({ ...msg.stats }, 'epoch finished');
          }
          const now = Date.now();
          if (msg.type === 'epoch' || now - lastWrite >= interval) flush();
          if (now - lastCancelCheck >= 1000) {
            lastCancelCheck = now;
            void deps.isCancelled(jobId).then((c) => c && cancel.abort(), () => undefined);
          }
        },
        { cancel: cancel.signal, pause: pause.signal, maxRssBytes: deps.maxRssBytes, timeBudget: timeBudget(job, params.maxDurationSeconds, deps.maxSeconds) },
      );
    } catch (err) {
      await writing;
      if (err instanceof SandboxLimitError) {
        log.warn({ reason: err.message }, 'job stopped: over its budget');
        return giveUp(err.message);
      }
      if (err instanceof TrainingCancelledError && lockLost) throw new Error('the job lock was lost; another worker goes on with the job');
      if (err instanceof TrainingCancelledError) {
        log.info('training cancelled');
        return giveUp(CANCELLED_REASON);
      }
      if (pause.signal.aborted) {
        // Back to the queue without counting an attempt; any worker resumes it from the checkpoint.
        const at = err instanceof TrainingPausedError ? err.position : undefined;
        log.info({ epochsDone: at?.epochsDone, batchesDone: at?.batchesDone }, 'training paused for shutdown; job back in the queue');
        await job.moveToWait(token);
        throw new WaitingError();
      }
      const willRetry = job.attemptsMade + 1 < (job.opts.attempts ?? 1);
      if (!willRetry) await deps.checkpoints.remove(jobId).catch(() => undefined);
      throw err;
    }
    flush();
    await writing;
    if (result.kind !== 'version') throw new Error(`a ${params.type} job gave back ${result.kind}, not a version`);
    const { outcome } = result;

    const version = await deps.store.writeVersion(outcome.files, {
      jobId,
      createdAt: new Date().toISOString(),
      architecture: outcome.architecture,
      params,
      ...(outcome.lineage && { lineage: outcome.lineage }),
      ...(outcome.promotion && { promotion: outcome.promotion }),
      dataset: outcome.dataset,
      history: outcome.history,
      metrics: outcome.metrics,
      onnx: outcome.onnx,
      backend: outcome.backend,
      durationMs: outcome.durationMs,
    });
    log.info({ version, testAccuracy: outcome.metrics.testAccuracy, durationMs: outcome.durationMs }, 'model version written');
    await deps.checkpoints.remove(jobId).catch((err) => log.warn({ err }, 'could not remove the checkpoint'));
    await deps.publishVersion(version).catch((err) => log.warn({ err, version }, 'could not announce the new version; the API will find it on its next poll'));
    return { modelVersion: version, metrics: { testAccuracy: outcome.metrics.testAccuracy, testLoss: outcome.metrics.testLoss } };
  };
}

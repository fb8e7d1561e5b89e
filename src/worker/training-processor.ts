import { UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { TrainingCancelledError } from '../ml/train.ts';
import { InvalidJobDataError, parseJobData, type JobProgressRecord, type TrainJobResult } from '../queue/job-schemas.ts';
import { CANCELLED_REASON } from '../queue/job-view.ts';
import type { ModelStore } from '../store/model-store.ts';
import { trainInChild } from './run-in-child.ts';
import type { ToTrainer } from './training-messages.ts';

export interface TrainProcessorDeps {
  store: ModelStore;
  datasetsDir: string;
  backend: Extract<ToTrainer, { type: 'start' }>['backend'];
  log: Logger;
  isCancelled: (jobId: string) => Promise<boolean>;
  publishVersion: (version: number) => Promise<void>;
  /** Least time between two progress writes to Redis. */
  progressIntervalMs?: number;
}

/**
 * The queue consumer for `train` and `finetune` jobs, "like an API route, but for the queue": validate, run the
 * use case in a child process, relay progress, write the version, announce it.
 */
export function createTrainingProcessor(deps: TrainProcessorDeps) {
  const interval = deps.progressIntervalMs ?? 500;
  return async (job: Job, _token?: string, signal?: AbortSignal): Promise<TrainJobResult> => {
    const log = deps.log.child({ jobId: job.id });
    let params;
    try {
      params = parseJobData(job.data);
    } catch (err) {
      if (err instanceof InvalidJobDataError) throw new UnrecoverableError(err.message);
      throw err;
    }
    if (await deps.isCancelled(job.id!)) throw new UnrecoverableError(CANCELLED_REASON);

    // Our own abort controller merges BullMQ's signal with the cancel marker checked while training.
    const abort = new AbortController();
    signal?.addEventListener('abort', () => abort.abort(), { once: true });
    const record: JobProgressRecord = { progress: null, history: [] };
    let lastWrite = 0;
    let lastCancelCheck = Date.now();
    let writing: Promise<unknown> = Promise.resolve();
    const flush = () => {
      lastWrite = Date.now();
      writing = writing.then(() => job.updateProgress({ ...record })).catch((err) => log.warn({ err }, 'progress update failed'));
    };

    log.info({ params }, 'training started');
    let outcome;
    try {
      outcome = await trainInChild(
        { params, backend: deps.backend, paths: { modelsDir: deps.store.root, datasetsDir: deps.datasetsDir } },
        (msg) => {
          if (msg.type === 'batch') record.progress = msg.progress;
          if (msg.type === 'epoch') {
            record.history.push(msg.stats);
            log.info({ ...msg.stats }, 'epoch finished');
          }
          const now = Date.now();
          if (msg.type === 'epoch' || now - lastWrite >= interval) flush();
          if (now - lastCancelCheck >= 1000) {
            lastCancelCheck = now;
            void deps.isCancelled(job.id!).then((c) => c && abort.abort(), () => undefined);
          }
        },
        abort.signal,
      );
    } catch (err) {
      await writing;
      if (err instanceof TrainingCancelledError) {
        log.info('training cancelled');
        throw new UnrecoverableError(CANCELLED_REASON);
      }
      throw err;
    }
    flush();
    await writing;

    const version = await deps.store.writeVersion(outcome.files, {
      jobId: job.id!,
      createdAt: new Date().toISOString(),
      architecture: outcome.architecture,
      params,
      ...(outcome.lineage && { lineage: outcome.lineage }),
      dataset: outcome.dataset,
      history: outcome.history,
      metrics: outcome.metrics,
      backend: outcome.backend,
      durationMs: outcome.durationMs,
    });
    log.info({ version, testAccuracy: outcome.metrics.testAccuracy, durationMs: outcome.durationMs }, 'model version written');
    await deps.publishVersion(version).catch((err) => log.warn({ err, version }, 'could not announce the new version; the API will find it on its next poll'));
    return { modelVersion: version, metrics: { testAccuracy: outcome.metrics.testAccuracy, testLoss: outcome.metrics.testLoss } };
  };
}

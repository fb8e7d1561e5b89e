import { UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { BackendName } from '../config.ts';
import type { CostBudget } from '../ml/import-model.ts';
import { InvalidJobDataError, jobRequestId, parseModelJobData, type ModelJobResult } from '../queue/job-data.ts';
import { CANCELLED_REASON } from '../queue/job-view.ts';
import type { ImportStaging } from '../store/import-staging.ts';
import type { ModelStore } from '../store/model-store.ts';
import { timeBudget } from './job-processor.ts';
import { findVersionOfJob } from './job-version.ts';
import { runInSandbox, SandboxLimitError } from './sandbox/fork.ts';

export interface ModelJobProcessorDeps {
  store: ModelStore;
  staging: ImportStaging;
  datasetsDir: string;
  backend: BackendName;
  log: Logger;
  isCancelled: (jobId: string) => Promise<boolean>;
  publishVersion: (version: number) => Promise<void>;
  budget: CostBudget;
  maxSeconds: number;
  maxRssBytes: number;
  /** MNIST_TEST_LIMIT: how many MNIST test images score an imported version (evaluate jobs use all). */
  testLimit?: number;
}

/**
 * The queue consumer for `import` and `evaluate` jobs. Like training, each runs in a child process
 * (an imported model is untrusted code for the wasm heap: it may ask for gigabytes), under the
 * memory watchdog and the time budget; an import writes a version, an evaluation returns its figures.
 * A failure is final: running the same upload or evaluation again would fail the same way.
 */
export function createModelJobProcessor(deps: ModelJobProcessorDeps) {
  return async (job: Job): Promise<ModelJobResult> => {
    const log = deps.log.child({ jobId: job.id, requestId: jobRequestId(job.data) });
    const jobId = job.id!;
    let params;
    try {
      params = parseModelJobData(job.data);
    } catch (err) {
      if (err instanceof InvalidJobDataError) throw new UnrecoverableError(err.message);
      throw err;
    }
    try {
      if (await deps.isCancelled(jobId)) throw new UnrecoverableError(CANCELLED_REASON);
      if (params.type === 'import') {
        // An earlier attempt may have written the version and died before the job was marked done.
        const existing = job.attemptsStarted > 1 ? await findVersionOfJob(deps.store, jobId, job.timestamp) : undefined;
        if (existing) return { modelVersion: existing.version, metrics: { testAccuracy: existing.metrics.testAccuracy, testLoss: existing.metrics.testLoss } };
      }
      log.info({ params }, `${params.type} started`);
      const result = await runInSandbox(
        {
          params,
          backend: deps.backend,
          paths: { modelsDir: deps.store.root, datasetsDir: deps.datasetsDir },
          ...(params.type === 'import' && { upload: { dir: deps.staging.root, jobId, budget: deps.budget }, testLimit: deps.testLimit }),
        },
        () => undefined,
        { maxRssBytes: deps.maxRssBytes, timeBudget: timeBudget(job, undefined, deps.maxSeconds) },
      ).catch((err: Error) => {
        throw new UnrecoverableError(err instanceof SandboxLimitError ? err.message : `${params.type} failed: ${err.message}`);
      });
      if (result.kind === 'evaluation') {
        log.info({ accuracy: result.evaluation.accuracy, count: result.evaluation.count }, 'evaluation done');
        return { evaluation: result.evaluation };
      }
      if (result.kind !== 'version') throw new Error(`a ${params.type} job gave back ${result.kind}, not a version`);
      const { outcome } = result;
      const version = await deps.store.writeVersion(outcome.files, {
        jobId,
        createdAt: new Date().toISOString(),
        architecture: outcome.architecture,
        params: { ...params, ...outcome.details },
        dataset: outcome.dataset,
        history: outcome.history,
        metrics: outcome.metrics,
        onnx: outcome.onnx,
        backend: outcome.backend,
        durationMs: outcome.durationMs,
      });
      log.info({ version, testAccuracy: outcome.metrics.testAccuracy }, 'model imported');
      await deps.publishVersion(version).catch((err) => log.warn({ err, version }, 'could not announce the imported version; the API will find it on its next poll'));
      return { modelVersion: version, metrics: { testAccuracy: outcome.metrics.testAccuracy, testLoss: outcome.metrics.testLoss } };
    } finally {
      if (params.type === 'import') await deps.staging.remove(jobId).catch((err) => log.warn({ err }, 'could not remove the staged upload'));
    }
  };
}

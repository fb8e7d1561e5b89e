import { randomInt } from 'node:crypto';
import type { DatasetStore } from '../store/dataset-store.ts';
import type { ModelStore } from '../store/model-store.ts';
import type { JobRequest } from '../schemas/jobs.ts';
import { withDefaults, type JobData } from './job-data.ts';
import { ServiceError } from '../errors.ts';

export class JobRequestError extends ServiceError {
  constructor(message: string) {
    super('invalid', message);
  }
}

/**
 * A validated request → what the queue carries: defaults filled in, a seed chosen, and references
 * checked now (so a typo fails the POST, not a worker minutes later), `latest` pinned to a number
 * (so the job's lineage is what it was when queued).
 */
export async function resolveJobRequest(request: JobRequest, deps: { modelStore: ModelStore; datasetStore: DatasetStore }): Promise<JobData> {
  const params = withDefaults(request);
  const seed = params.seed ?? randomInt(0, 2 ** 31 - 1);
  if (params.type === 'train') return { ...params, seed };

  let baseModel: number;
  if (params.baseModel === 'latest') {
    const latest = await deps.modelStore.latestVersion();
    if (latest === undefined) throw new JobRequestError('baseModel "latest": no model version exists yet; train one first with {"type":"train"}');
    baseModel = latest;
  } else {
    baseModel = params.baseModel;
    if (!(await deps.modelStore.exists(baseModel))) throw new JobRequestError(`baseModel: model version ${baseModel} does not exist`);
  }
  if (params.dataset !== 'mnist') {
    await deps.datasetStore.get(params.dataset).catch(() => {
      throw new JobRequestError(`dataset: ${params.dataset} does not exist (upload one with POST /v1/datasets, or use "mnist")`);
    });
  }
  return { ...params, seed, baseModel };
}

import { randomInt } from 'node:crypto';
import type { DatasetStore } from '../store/dataset-store.ts';
import type { ModelStore } from '../store/model-store.ts';
import type { JobRequest } from '../schemas/jobs.ts';
import { layerCount } from '../ml/model-files.ts';
import { withDefaults, type JobData } from './job-data.ts';
import { ServiceError } from '../errors.ts';
import type { FeedbackStore } from '../redis/feedback-store.ts';
import { MIN_CORRECTIONS } from '../schemas/jobs.ts';

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
export async function resolveJobRequest(
  request: JobRequest,
  deps: { modelStore: ModelStore; datasetStore: DatasetStore; maxSeconds: number; feedback?: Pick<FeedbackStore, 'countSince'> },
): Promise<JobData> {
  const params = withDefaults(request);
  const seed = params.seed ?? randomInt(0, 2 ** 31 - 1);
  const [low, high] = params.augment?.scale ?? [1, 1];
  if (low > high) throw new JobRequestError(`augment.scale: the range [${low}, ${high}] runs backwards; give the smaller zoom first`);
  const maxDurationSeconds = params.maxDurationSeconds ?? deps.maxSeconds;
  if (maxDurationSeconds > deps.maxSeconds) throw new JobRequestError(`maxDurationSeconds: at most ${deps.maxSeconds} (JOB_MAX_SECONDS), got ${maxDurationSeconds}`);
  if (params.type === 'train') return { ...params, seed, maxDurationSeconds };

  let baseModel: number;
  if (params.baseModel === 'latest') {
    const latest = await deps.modelStore.latestVersion();
    if (latest === undefined) throw new JobRequestError('baseModel "latest": no model version exists yet; train one first with {"type":"train"}');
    baseModel = latest;
  } else {
    baseModel = params.baseModel;
    if (!(await deps.modelStore.exists(baseModel))) throw new JobRequestError(`baseModel: model version ${baseModel} does not exist`);
  }
  if (typeof params.freeze === 'number') {
    const layers = layerCount(await deps.modelStore.readModelJson(baseModel));
    if (params.freeze >= layers) {
      throw new JobRequestError(`freeze: version ${baseModel} has ${layers} layers, so freezing ${params.freeze} leaves nothing to train; freeze at most ${layers - 1}, or "features"`);
    }
  }
  if (params.since !== undefined && params.dataset !== 'feedback') throw new JobRequestError('since: only with "dataset": "feedback" (which corrections to tune on)');
  if (params.dataset === 'feedback') {
    if (!deps.feedback) throw new JobRequestError('dataset: "feedback" is not available here');
    let afterMs: number | undefined;
    if (params.since !== undefined) {
      const since = await deps.modelStore.readMetadata(params.since).catch(() => {
        throw new JobRequestError(`since: model version ${params.since} does not exist`);
      });
      afterMs = Date.parse(since.createdAt);
    }
    const count = await deps.feedback.countSince(afterMs);
    if (count < MIN_CORRECTIONS) {
      throw new JobRequestError(
        `dataset "feedback": ${count} correction${count === 1 ? '' : 's'}${params.since !== undefined ? ` since version ${params.since}` : ''}; at least ${MIN_CORRECTIONS} are needed (POST /v1/feedback)`,
      );
    }
  } else if (params.dataset !== 'mnist') {
    await deps.datasetStore.get(params.dataset).catch(() => {
      throw new JobRequestError(`dataset: ${params.dataset} does not exist (upload one with POST /v1/datasets, use "mnist", or "feedback")`);
    });
  }
  return { ...params, seed, baseModel, maxDurationSeconds };
}

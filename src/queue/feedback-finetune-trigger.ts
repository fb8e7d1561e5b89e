import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { FeedbackStore } from '../redis/feedback-store.ts';
import type { DatasetStore } from '../store/dataset-store.ts';
import type { ModelStore } from '../store/model-store.ts';
import { newJobId, type JobService } from './job-service.ts';
import { resolveJobRequest } from './resolve-job-request.ts';

/** Jobs in these states are still to finish: while one is, no other is queued. */
const UNFINISHED = new Set(['queued', 'running']);

// Deletes the claim only if it is still the one this replica read, so two replicas cannot both free it.
const RELEASE_IF = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export interface FeedbackFinetuneTrigger {
  /** Told how many corrections a request added or relabelled. Never throws. */
  (count: number): Promise<void>;
}

/**
 * FEEDBACK_FINETUNE_EVERY: after every `every` new corrections, a fine-tune of the served version
 * on all of them (`"dataset": "feedback"`), never two at a time. The count and the running job's
 * id live in Redis, so every API replica counts toward the same total and one job is queued. The
 * version it writes serves only if it passes the promotion gate, like any tuned on corrections.
 */
export function feedbackFinetuneTrigger(deps: {
  every: number;
  redis: Redis;
  keys: { counter: string; job: string };
  jobs: JobService;
  modelStore: ModelStore;
  datasetStore: DatasetStore;
  feedback: FeedbackStore;
  maxSeconds: number;
  servedVersion: () => number | undefined;
  log: Logger;
}): FeedbackFinetuneTrigger {
  const { every, redis, keys, jobs, log } = deps;
  return async (count) => {
    if (every <= 0 || count <= 0) return;
    try {
      if ((await redis.incrby(keys.counter, count)) < every) return;
      const running = await redis.get(keys.job);
      if (running !== null) {
        const job = await jobs.get(running);
        if (job && UNFINISHED.has(job.state)) return; // counted; the next correction after it ends queues the next
        await redis.eval(RELEASE_IF, 1, keys.job, running);
      }
      const id = newJobId();
      if ((await redis.set(keys.job, id, 'NX')) !== 'OK') return; // another replica claimed it
      try {
        const baseModel = deps.servedVersion() ?? 'latest';
        const data = await resolveJobRequest({ type: 'finetune', baseModel, dataset: 'feedback' }, deps);
        await jobs.enqueue(data, {}, id);
        await redis.set(keys.counter, '0');
        log.info({ jobId: id, baseModel: data.type === 'finetune' ? data.baseModel : undefined, every }, 'fine-tune on corrections queued (FEEDBACK_FINETUNE_EVERY)');
      } catch (err) {
        await redis.eval(RELEASE_IF, 1, keys.job, id);
        throw err;
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not queue a fine-tune on corrections (FEEDBACK_FINETUNE_EVERY); the next correction tries again');
    }
  };
}

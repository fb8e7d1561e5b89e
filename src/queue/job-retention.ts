import type { JobsOptions, KeepJobs } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import type { RedisKeys } from '../redis/keys.ts';

type RetentionConfig = Pick<Config, 'JOB_RETENTION_SECONDS' | 'JOB_RETENTION_COUNT'>;

/**
 * How many finished jobs BullMQ keeps, and for how long (`JOB_RETENTION_SECONDS`,
 * `JOB_RETENTION_COUNT`; 0 = no limit of that kind). Undefined = keep every finished job.
 * Succeeded jobs and failed (or cancelled) jobs are counted separately. BullMQ applies it lazily:
 * old jobs go when a later job finishes, not on a timer.
 */
export function keepFinishedJobs(config: RetentionConfig): KeepJobs | undefined {
  const age = config.JOB_RETENTION_SECONDS;
  const count = config.JOB_RETENTION_COUNT;
  if (age > 0) return count > 0 ? { age, count } : { age };
  return count > 0 ? { count } : undefined;
}

/** The job options that carry the retention: set on every job the API queues. */
export function jobRetentionOptions(config: RetentionConfig): Pick<JobsOptions, 'removeOnComplete' | 'removeOnFail'> {
  const keep = keepFinishedJobs(config) ?? false; // false: BullMQ never removes a finished job
  return { removeOnComplete: keep, removeOnFail: keep };
}

/** The same as Worker options: applies to jobs queued without their own retention. */
export function workerJobRetention(config: RetentionConfig): { removeOnComplete?: KeepJobs; removeOnFail?: KeepJobs } {
  const keep = keepFinishedJobs(config);
  return keep ? { removeOnComplete: keep, removeOnFail: keep } : {};
}

/**
 * The service's own job keys follow BullMQ's retention: ids in the jobs index and in the
 * cancelled set whose job BullMQ has removed are dropped, so neither grows for ever. Returns how
 * many were dropped. Read in pages, so a large index costs a few round trips, not one long command.
 */
export async function pruneJobKeys(redis: Redis, keys: Pick<RedisKeys, 'jobIndex' | 'cancelled'>, queues: { toKey: (type: string) => string }[]): Promise<number> {
  const exists = async (ids: string[]) => {
    const pipeline = redis.pipeline();
    for (const id of ids) for (const q of queues) pipeline.exists(q.toKey(id));
    const answers = ((await pipeline.exec()) ?? []).map(([err, n]) => (err ? 1 : Number(n))); // an error keeps the id
    return ids.map((_, i) => answers.slice(i * queues.length, (i + 1) * queues.length).some((n) => n > 0));
  };
  let dropped = 0;
  for (let start = 0; ; start += PAGE) {
    const ids = await redis.zrange(keys.jobIndex, start, start + PAGE - 1);
    if (ids.length === 0) break;
    const alive = await exists(ids);
    const removed = ids.filter((_, i) => !alive[i]);
    if (removed.length > 0) {
      await redis.zrem(keys.jobIndex, ...removed);
      dropped += removed.length;
      start -= removed.length; // the page after shifted down by as many
    }
  }
  let cursor = '0';
  do {
    const [next, ids] = await redis.sscan(keys.cancelled, cursor, 'COUNT', PAGE);
    cursor = next;
    if (ids.length === 0) continue;
    const alive = await exists(ids);
    const removed = ids.filter((_, i) => !alive[i]);
    if (removed.length > 0) {
      await redis.srem(keys.cancelled, ...removed);
      dropped += removed.length;
    }
  } while (cursor !== '0');
  return dropped;
}

const PAGE = 500;

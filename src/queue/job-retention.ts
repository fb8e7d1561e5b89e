import type { JobsOptions, KeepJobs } from 'bullmq';
import type { Config } from '../config.ts';

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

import type { JobsOptions } from 'bullmq';
import type { Config } from '../config.ts';

/** How often a job whose training throws is tried (`JOB_ATTEMPTS`), a little later each time; set on every job the API queues. */
export function jobAttemptOptions(config: Pick<Config, 'JOB_ATTEMPTS'>): Pick<JobsOptions, 'attempts' | 'backoff'> {
  return config.JOB_ATTEMPTS > 1 ? { attempts: config.JOB_ATTEMPTS, backoff: { type: 'exponential', delay: 5000 } } : {};
}

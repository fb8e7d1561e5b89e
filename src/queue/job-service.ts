import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ServiceError } from '../errors.ts';
import type { RedisKeys } from '../redis/keys.ts';
import { FINISHED_JOB_STATES, type JobView } from '../schemas/jobs.ts';
import type { JobData, JobMeta, ModelJobData } from './job-data.ts';
import { toJobView } from './job-view.ts';
import type { ModelJobsQueue, TrainingQueue } from './queues.ts';

/** The form of the ids this service hands out; anything else cannot be a job of ours (BullMQ keeps `meta`, `id`, `events`… beside them). */
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class JobNotFoundError extends ServiceError {
  constructor(id: string) {
    super('not-found', `job ${id} does not exist`);
  }
}

/** Too many training jobs already wait for a worker: come back in about the time a short job takes (Retry-After: 30). */
export class QueueFullError extends ServiceError {
  constructor(readonly waiting: number) {
    super('busy', `${waiting} training jobs are already waiting for a worker (MAX_QUEUED_JOBS); try again when some have started`, 30);
  }
}

/** A new job's id, in the form `get` accepts; staged uploads are named by it before the job is queued. */
export const newJobId = (): string => randomUUID();

/**
 * What the API does with jobs: enqueue, read, list and cancel. It never trains; the state a client
 * sees is BullMQ's, plus the cancellation marker that BullMQ has no notion of for queued jobs.
 * Training jobs and model jobs (import, evaluate) live on two queues and share one index.
 */
export class JobService {
  constructor(
    private readonly training: TrainingQueue,
    private readonly modelJobs: ModelJobsQueue,
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly maxQueued = Infinity,
  ) {}

  /** The tail of the training jobs being admitted one at a time. */
  private admission: Promise<unknown> = Promise.resolve();

  /**
   * Runs the count and the add of one training job at a time: run side by side, a burst of requests
   * would all count the same room under MAX_QUEUED_JOBS. (Replicas of the API can still each add one
   * past it at the same moment: the cap is per replica's burst, not exact across them.)
   */
  private oneAtATime<T>(step: () => Promise<T>): Promise<T> {
    const next = this.admission.then(step, step);
    this.admission = next.catch(() => undefined);
    return next;
  }

  /** `meta.requestId` (the HTTP request's id) travels in the job's data, so the worker's log lines for the job carry it. */
  async enqueue(data: JobData | ModelJobData, meta: JobMeta = {}, id = newJobId()): Promise<JobView> {
    let job;
    if (data.type === 'train' || data.type === 'finetune') {
      job = await this.oneAtATime(async () => {
        const waiting = await this.training.count();
        if (waiting >= this.maxQueued) throw new QueueFullError(waiting);
        return this.training.add(data.type, { ...data, ...meta }, { jobId: id });
      });
    } else job = await this.modelJobs.add(data.type, { ...data, ...meta }, { jobId: id });
    await this.redis.zadd(this.keys.jobIndex, job.timestamp, id);
    return toJobView(job, 'waiting', false);
  }

  async get(id: string): Promise<JobView | undefined> {
    if (!JOB_ID.test(id)) return undefined;
    for (const queue of [this.training, this.modelJobs] as const) {
      // The state first, then the job's fields: read the other way round, a job finishing in between
      // would look finished without its result (a "succeeded" job with no modelVersion).
      const [state, cancelled] = await Promise.all([queue.getJobState(id), this.redis.sismember(this.keys.cancelled, id)]);
      if (state === 'unknown') continue;
      const job = await queue.getJob(id);
      if (job) return toJobView(job, state, cancelled === 1);
    }
    return undefined;
  }

  async list(offset: number, limit: number): Promise<{ items: JobView[]; total: number }> {
    const [ids, total] = await Promise.all([
      this.redis.zrevrange(this.keys.jobIndex, offset, offset + limit - 1),
      this.redis.zcard(this.keys.jobIndex),
    ]);
    const views = await Promise.all(ids.map((id) => this.get(id)));
    const gone = ids.filter((_, i) => !views[i]);
    if (gone.length > 0) await this.redis.zrem(this.keys.jobIndex, ...gone); // removed by BullMQ retention
    return { items: views.filter((v): v is JobView => v !== undefined), total: total - gone.length };
  }

  /**
   * Marks the job cancelled and tells every worker; the one running it stops within one batch.
   * Waits briefly for a running job to stop so the caller usually gets the final state.
   */
  async cancel(id: string, waitMs = 5000): Promise<JobView> {
    const before = await this.get(id);
    if (!before) throw new JobNotFoundError(id);
    if (FINISHED_JOB_STATES.has(before.state)) throw new ServiceError('conflict', `job ${id} has already ${before.state === 'cancelled' ? 'been cancelled' : before.state}`);
    await this.redis.sadd(this.keys.cancelled, id);
    await this.redis.publish(this.keys.cancelChannel, id);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const view = (await this.get(id))!;
      if (view.state !== 'running' || Date.now() >= deadline) return view;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async isCancelled(id: string): Promise<boolean> {
    return (await this.redis.sismember(this.keys.cancelled, id)) === 1;
  }
}

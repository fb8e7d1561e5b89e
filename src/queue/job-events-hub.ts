import { QueueEvents, QueueKeys } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { JobProgressRecord } from './job-data.ts';
import { TRAINING_QUEUE } from './queues.ts';
import { createRedis, isRedisConnectionError, logConnectionState } from '../redis/connection.ts';

/** What happened to a job: a progress record, or some other change (read the job again). */
export type JobSignal = { kind: 'progress'; record: JobProgressRecord } | { kind: 'changed' };

export type JobOutcome = 'completed' | 'failed';

export interface JobEventsHubOptions {
  /** A normal client, for reading where the event stream ends. */
  client: Redis;
  /** The hub's own connection is opened from this: QueueEvents blocks the connection it reads on. */
  redisUrl: string;
  prefix: string;
  log: Pick<Logger, 'warn' | 'info' | 'error'>;
}

/**
 * The API process's one reader of the training queue's event stream (one blocking Redis connection),
 * fanned out to whoever listens: the job event streams by job id, the metrics by outcome.
 */
export class JobEventsHub {
  private queueEvents?: QueueEvents;
  private connection?: Redis;
  private starting?: Promise<void>;
  private readonly jobListeners = new Map<string, Set<(s: JobSignal) => void>>();
  private readonly finishListeners: ((jobId: string, outcome: JobOutcome) => void)[] = [];

  constructor(private readonly opts: JobEventsHubOptions) {}

  /**
   * Starts reading the event stream from its current end, fixed before anyone subscribes, so the
   * events of a job that starts right after that are not missed (QueueEvents alone reads from "$",
   * i.e. from whenever its first XREAD happens to run).
   */
  ready(): Promise<void> {
    this.starting ??= this.start();
    return this.starting;
  }

  /** Signals about one job until the returned function is called. */
  subscribe(jobId: string, fn: (s: JobSignal) => void): () => void {
    let set = this.jobListeners.get(jobId);
    if (!set) this.jobListeners.set(jobId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.jobListeners.delete(jobId);
    };
  }

  /** Every job that completes or fails from now on. */
  onFinished(fn: (jobId: string, outcome: JobOutcome) => void): void {
    this.finishListeners.push(fn);
  }

  private dispatch(jobId: string, signal: JobSignal) {
    for (const fn of this.jobListeners.get(jobId) ?? []) fn(signal);
  }

  private async start() {
    const { client, redisUrl, prefix, log } = this.opts;
    const key = new QueueKeys(prefix).toKey(TRAINING_QUEUE, 'events');
    const lastEventId = await client.xrevrange(key, '+', '-', 'COUNT', 1).then(
      (last) => last[0]?.[0] ?? '0-0',
      (err: Error) => {
        log.warn({ err: err.message }, 'job events: could not read the event stream position; starting from new events');
        return '$';
      },
    );
    this.connection = createRedis(redisUrl, 'subscriber');
    logConnectionState(this.connection, 'job events', log);
    const qe = new QueueEvents(TRAINING_QUEUE, { connection: this.connection, prefix, lastEventId });
    qe.on('error', (err) => isRedisConnectionError(err) || log.warn({ err: err.message }, 'job events: queue events error'));
    qe.on('progress', ({ jobId, data }) => {
      if (data && typeof data === 'object') this.dispatch(jobId, { kind: 'progress', record: data as JobProgressRecord });
    });
    for (const name of ['active', 'waiting', 'removed', 'stalled'] as const) {
      qe.on(name, ({ jobId }: { jobId: string }) => this.dispatch(jobId, { kind: 'changed' }));
    }
    for (const outcome of ['completed', 'failed'] as const) {
      qe.on(outcome, ({ jobId }: { jobId: string }) => {
        this.dispatch(jobId, { kind: 'changed' });
        for (const fn of this.finishListeners) fn(jobId, outcome);
      });
    }
    this.queueEvents = qe;
  }

  async close() {
    await this.starting;
    await this.queueEvents?.close().catch(() => undefined);
    this.connection?.disconnect();
  }
}

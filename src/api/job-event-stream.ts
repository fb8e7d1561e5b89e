import type { ServerResponse } from 'node:http';
import type { JobEventsHub } from '../queue/job-events-hub.ts';
import type { JobService } from '../queue/job-service.ts';
import { FINISHED_JOB_STATES, type JobView } from '../schemas/jobs.ts';

/** Some changes have no BullMQ event (a queued job cancelled through our marker), and events can be missed while Redis reconnects. */
const POLL_MS = 2000;
/** A comment line now and then keeps proxies and load balancers from closing an idle stream. */
const HEARTBEAT_MS = 15_000;
/** EventSource reconnects after this; every connection starts with a full snapshot, so nothing is lost. */
const RETRY_MS = 3000;

export type JobEvent =
  | { event: 'job'; data: JobView }
  | { event: 'progress'; data: NonNullable<JobView['progress']> }
  | { event: 'epoch'; data: JobView['history'][number] }
  | { event: 'state'; data: JobView }
  | { event: 'end'; data: { id: string; state: JobView['state'] } };

const progressOrder = (v: JobView) => [v.history.length, v.progress?.epoch ?? 0, v.progress?.batch ?? 0];
function isBehind(next: JobView, prev: JobView): boolean {
  const [a, b] = [progressOrder(next), progressOrder(prev)];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}
const stateKey = (v: JobView) => JSON.stringify([v.state, v.cancelRequested ?? false, v.modelVersion, v.error, v.startedAt, v.finishedAt]);

/**
 * What a client has not seen yet going from `prev` to `next`: new epochs, the latest batch, a state
 * change. Progress never goes backwards: a Redis read that raced an event cannot undo what was sent.
 */
export function jobUpdates(prev: JobView | undefined, next: JobView): { events: JobEvent[]; view: JobView } {
  if (!prev) return { events: [{ event: 'job', data: next }], view: next };
  const view = isBehind(next, prev) ? { ...next, progress: prev.progress, history: prev.history } : next;
  // In the order they happened: epochs before the one of the latest batch, that batch, then its epoch if it ended.
  const epochs = view.history.slice(prev.history.length).map((data) => ({ event: 'epoch' as const, data }));
  const current = view.progress?.epoch ?? Infinity;
  const events: JobEvent[] = epochs.filter((e) => e.data.epoch < current);
  if (view.progress && JSON.stringify(view.progress) !== JSON.stringify(prev.progress)) events.push({ event: 'progress', data: view.progress });
  events.push(...epochs.filter((e) => e.data.epoch >= current));
  if (stateKey(view) !== stateKey(prev)) events.push({ event: 'state', data: view });
  return { events, view };
}

/** One client's stream: every update is applied in order, one at a time, against what it was sent last. */
export class JobEventStream {
  private sent: JobView | undefined;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private unsubscribe = () => {};

  constructor(
    private readonly raw: ServerResponse,
    private readonly id: string,
    private readonly jobs: JobService,
    private readonly onClosed: () => void,
    private readonly requestId: string,
  ) {}

  start(first: JobView, hub: JobEventsHub) {
    this.raw.on('close', () => this.close());
    this.raw.writeHead(200, {
      'x-request-id': this.requestId,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: do not buffer the stream
    });
    this.raw.write(`retry: ${RETRY_MS}\n\n`);
    this.apply(first);
    if (this.closed) return;
    this.unsubscribe = hub.subscribe(this.id, (signal) =>
      signal.kind === 'progress' ? this.enqueue(async () => this.apply(this.sent && { ...this.sent, progress: signal.record.progress ?? null, history: signal.record.history ?? [] })) : this.sync(),
    );
    this.timers.push(setInterval(() => this.sync(), POLL_MS), setInterval(() => this.raw.write(': keep-alive\n\n'), HEARTBEAT_MS));
    this.sync(); // anything that happened between the first read and the subscription
  }

  private enqueue(step: () => Promise<void>) {
    this.chain = this.chain.then(() => (this.closed ? undefined : step())).catch(() => undefined);
  }

  private sync() {
    this.enqueue(async () => {
      const view = await this.jobs.get(this.id).catch(() => this.sent); // Redis away: try again on the next tick
      if (view) this.apply(view);
      else this.end(); // removed by retention while watched
    });
  }

  private apply(next: JobView | undefined) {
    if (!next || this.closed) return;
    const { events, view } = jobUpdates(this.sent, next);
    this.sent = view;
    for (const e of events) this.raw.write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
    if (FINISHED_JOB_STATES.has(view.state)) this.end();
  }

  /** The job is over: says so before closing, so an EventSource knows to stop rather than reconnect. */
  end() {
    if (this.closed) return;
    this.raw.write(`event: end\ndata: ${JSON.stringify({ id: this.id, state: this.sent?.state ?? 'unknown' })}\n\n`);
    this.raw.end();
    this.close();
  }

  /** This process is going away, not the job: close without `end`, so the client reconnects (to another replica). */
  disconnect() {
    if (this.closed) return;
    this.raw.end();
    this.close();
  }

  private close() {
    if (this.closed) return;
    this.closed = true;
    this.timers.forEach(clearInterval);
    this.unsubscribe();
    this.onClosed();
  }
}

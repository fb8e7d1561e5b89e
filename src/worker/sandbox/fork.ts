import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TrainingCancelledError, TrainingPausedError } from '../../ml/train.ts';
import { siblingModule } from '../../ts-worker.ts';
import type { FromSandbox, SandboxResult, ToSandbox } from './protocol.ts';

const ENTRY = fileURLToPath(siblingModule('./entry', import.meta.url));
/** How long a cancelled (or paused) job may take to finish its batch before it is killed. */
const STOP_GRACE_MS = 30_000;
/** How often the memory watchdog reads the child's resident size. */
const RSS_POLL_MS = 250;

export interface ChildControl {
  /** Aborting asks the job to stop after the current batch; the promise rejects with TrainingCancelledError. */
  cancel?: AbortSignal;
  /** Aborting asks it to save a checkpoint after the current batch and stop; the promise rejects with TrainingPausedError. */
  pause?: AbortSignal;
  /** How long a stop may take before the child is killed. */
  graceMs?: number;
  /** Kill the child when its resident memory passes this many bytes (JOB_MAX_RSS_MB). */
  maxRssBytes?: number;
  /** The job's time budget (maxDurationSeconds): the child is killed at `endsAt` (epoch ms). */
  timeBudget?: { seconds: number; endsAt: number };
}

/** The child was stopped for passing a budget of the job's; the message says which. Not worth a retry. */
export class SandboxLimitError extends Error {}

/** Resident memory of a process in bytes, from /proc (Linux); undefined where it cannot be read. */
function residentBytes(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Runs one job in a fresh child process; progress and other reports go to `onMessage`. */
export function runInSandbox(
  start: Omit<Extract<ToSandbox, { type: 'start' }>, 'type'>,
  onMessage: (msg: Extract<FromSandbox, { type: 'batch' | 'epoch' | 'resumed' | 'warning' }>) => void,
  control: ChildControl = {},
): Promise<SandboxResult> {
  // Same loader flags (tsx) as this process; 'advanced' IPC carries typed arrays (the weights) as is.
  const child = fork(ENTRY, [], { execArgv: process.execArgv, serialization: 'advanced', stdio: 'inherit' });
  const { cancel, pause } = control;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = (type: 'cancel' | 'pause') => () => {
    if (child.connected) child.send({ type } satisfies ToSandbox);
    killTimer ??= setTimeout(() => child.kill('SIGKILL'), control.graceMs ?? STOP_GRACE_MS);
  };
  const onCancel = stop('cancel');
  const onPause = stop('pause');

  return new Promise<SandboxResult>((resolve, reject) => {
    let settled = false;
    let limitHit: SandboxLimitError | undefined;
    const timers: NodeJS.Timeout[] = [];
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      cancel?.removeEventListener('abort', onCancel);
      pause?.removeEventListener('abort', onPause);
      clearTimeout(killTimer);
      timers.forEach(clearTimeout);
      if (child.exitCode === null) child.kill('SIGKILL');
      fn();
    };
    const overLimit = (message: string) => {
      limitHit ??= new SandboxLimitError(message);
      child.kill('SIGKILL');
    };
    if (control.maxRssBytes) {
      const max = control.maxRssBytes;
      timers.push(setInterval(() => {
        const rss = child.pid === undefined ? undefined : residentBytes(child.pid);
        if (rss !== undefined && rss > max) overLimit(`the job's process used ${Math.round(rss / 2 ** 20)} MB of memory, more than ${Math.round(max / 2 ** 20)} MB (JOB_MAX_RSS_MB), and was stopped`);
      }, RSS_POLL_MS));
    }
    if (control.timeBudget) {
      const { seconds, endsAt } = control.timeBudget;
      timers.push(setTimeout(() => overLimit(`the job ran longer than its time budget of ${seconds} s (maxDurationSeconds) and was stopped`), Math.max(0, endsAt - Date.now())));
    }
    child.on('message', (msg: FromSandbox) => {
      if (msg.type === 'done') settle(() => resolve({ kind: 'version', outcome: msg.outcome }));
      else if (msg.type === 'evaluated') settle(() => resolve({ kind: 'evaluation', evaluation: msg.evaluation }));
      else if (msg.type === 'exported') settle(() => resolve({ kind: 'onnx', onnx: msg.onnx, record: msg.record }));
      else if (msg.type === 'cancelled') settle(() => reject(new TrainingCancelledError()));
      else if (msg.type === 'paused') settle(() => reject(new TrainingPausedError(msg.position)));
      else if (msg.type === 'error') {
        const err = new Error(msg.message);
        if (msg.stack) err.stack = msg.stack;
        settle(() => reject(err));
      } else onMessage(msg);
    });
    child.on('error', (err) => settle(() => reject(err)));
    child.on('exit', (code, sig) =>
      settle(() =>
        reject(limitHit ?? (cancel?.aborted ? new TrainingCancelledError() : new Error(`the job's process exited (code ${code}, signal ${sig}) before finishing`))),
      ),
    );
    child.send({ type: 'start', ...start } satisfies ToSandbox);
    for (const [signal, handler] of [[cancel, onCancel], [pause, onPause]] as const) {
      if (signal?.aborted) handler();
      else signal?.addEventListener('abort', handler, { once: true });
    }
  });
}

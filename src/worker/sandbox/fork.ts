import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TrainingCancelledError, TrainingPausedError } from '../../ml/train.ts';
import type { TrainingOutcome } from '../train-job.ts';
import type { FromTrainer, ToTrainer } from './protocol.ts';

const ENTRY = fileURLToPath(new URL('./entry.ts', import.meta.url));
/** How long a cancelled (or paused) trainer may take to finish its batch before it is killed. */
const STOP_GRACE_MS = 30_000;

export interface ChildControl {
  /** Aborting asks the trainer to stop after the current batch; the promise rejects with TrainingCancelledError. */
  cancel?: AbortSignal;
  /** Aborting asks it to save a checkpoint after the current batch and stop; the promise rejects with TrainingPausedError. */
  pause?: AbortSignal;
  /** How long a stop may take before the trainer is killed. */
  graceMs?: number;
}

/** Runs one training in a fresh child process; progress and other reports go to `onMessage`. */
export function runInSandbox(
  start: Omit<Extract<ToTrainer, { type: 'start' }>, 'type'>,
  onMessage: (msg: Extract<FromTrainer, { type: 'batch' | 'epoch' | 'resumed' | 'warning' }>) => void,
  control: ChildControl = {},
): Promise<TrainingOutcome> {
  // Same loader flags (tsx) as this process; 'advanced' IPC carries typed arrays (the weights) as is.
  const child = fork(ENTRY, [], { execArgv: process.execArgv, serialization: 'advanced', stdio: 'inherit' });
  const { cancel, pause } = control;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = (type: 'cancel' | 'pause') => () => {
    if (child.connected) child.send({ type } satisfies ToTrainer);
    killTimer ??= setTimeout(() => child.kill('SIGKILL'), control.graceMs ?? STOP_GRACE_MS);
  };
  const onCancel = stop('cancel');
  const onPause = stop('pause');

  return new Promise<TrainingOutcome>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      cancel?.removeEventListener('abort', onCancel);
      pause?.removeEventListener('abort', onPause);
      clearTimeout(killTimer);
      if (child.exitCode === null) child.kill('SIGKILL');
      fn();
    };
    child.on('message', (msg: FromTrainer) => {
      if (msg.type === 'done') settle(() => resolve(msg.outcome));
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
      settle(() => reject(cancel?.aborted ? new TrainingCancelledError() : new Error(`training process exited (code ${code}, signal ${sig}) before finishing`))),
    );
    child.send({ type: 'start', ...start } satisfies ToTrainer);
    for (const [signal, handler] of [[cancel, onCancel], [pause, onPause]] as const) {
      if (signal?.aborted) handler();
      else signal?.addEventListener('abort', handler, { once: true });
    }
  });
}

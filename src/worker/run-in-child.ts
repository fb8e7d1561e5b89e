import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TrainingCancelledError } from '../ml/train.ts';
import type { TrainingOutcome } from './run-training.ts';
import type { FromTrainer, ToTrainer } from './training-messages.ts';

const ENTRY = fileURLToPath(new URL('./training-process.ts', import.meta.url));
/** How long a cancelled trainer may take to finish its batch before it is killed. */
const CANCEL_GRACE_MS = 30_000;

/**
 * Runs one training in a fresh child process. `signal` aborting asks it to stop after the current
 * batch (and kills it if it does not); the promise then rejects with TrainingCancelledError.
 */
export function trainInChild(
  start: Omit<Extract<ToTrainer, { type: 'start' }>, 'type'>,
  onProgress: (msg: Extract<FromTrainer, { type: 'batch' | 'epoch' }>) => void,
  signal?: AbortSignal,
): Promise<TrainingOutcome> {
  // Same loader flags (tsx) as this process; 'advanced' IPC carries typed arrays (the weights) as is.
  const child = fork(ENTRY, [], { execArgv: process.execArgv, serialization: 'advanced', stdio: 'inherit' });
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    if (child.connected) child.send({ type: 'cancel' } satisfies ToTrainer);
    killTimer = setTimeout(() => child.kill('SIGKILL'), CANCEL_GRACE_MS);
  };

  return new Promise<TrainingOutcome>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
      if (child.exitCode === null) child.kill('SIGKILL');
      fn();
    };
    child.on('message', (msg: FromTrainer) => {
      if (msg.type === 'done') settle(() => resolve(msg.outcome));
      else if (msg.type === 'cancelled') settle(() => reject(new TrainingCancelledError()));
      else if (msg.type === 'error') {
        const err = new Error(msg.message);
        if (msg.stack) err.stack = msg.stack;
        settle(() => reject(err));
      } else onProgress(msg);
    });
    child.on('error', (err) => settle(() => reject(err)));
    child.on('exit', (code, sig) =>
      settle(() => reject(signal?.aborted ? new TrainingCancelledError() : new Error(`training process exited (code ${code}, signal ${sig}) before finishing`))),
    );
    child.send({ type: 'start', ...start } satisfies ToTrainer);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

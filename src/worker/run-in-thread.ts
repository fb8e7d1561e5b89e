import { Worker } from 'node:worker_threads';
import { TrainingCancelledError } from '../ml/train.ts';
import type { TrainingOutcome } from './run-training.ts';
import type { TrainingThreadInput, TrainingThreadMessage } from './thread-messages.ts';

const THREAD_URL = new URL('./training-thread.ts', import.meta.url);

export interface ThreadHandlers {
  onMessage: (msg: TrainingThreadMessage) => void;
}

/**
 * Runs one training in a fresh worker thread. `signal` aborting sets the shared cancel flag; the
 * thread stops after its current batch and the promise rejects with TrainingCancelledError.
 */
export function trainInThread(
  input: Omit<TrainingThreadInput, 'cancelFlag'>,
  handlers: ThreadHandlers,
  signal?: AbortSignal,
): Promise<TrainingOutcome> {
  const cancelFlag = new SharedArrayBuffer(4);
  const flag = new Int32Array(cancelFlag);
  // The thread inherits the loader flags (tsx) this process was started with.
  const thread = new Worker(THREAD_URL, { workerData: { ...input, cancelFlag } satisfies TrainingThreadInput, execArgv: process.execArgv });
  const onAbort = () => Atomics.store(flag, 0, 1);
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });

  return new Promise<TrainingOutcome>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      fn();
      void thread.terminate();
    };
    thread.on('message', (msg: TrainingThreadMessage) => {
      if (msg.type === 'done') settle(() => resolve(msg.outcome));
      else if (msg.type === 'cancelled') settle(() => reject(new TrainingCancelledError()));
      else if (msg.type === 'error') {
        const err = new Error(msg.message);
        if (msg.stack) err.stack = msg.stack;
        settle(() => reject(err));
      } else handlers.onMessage(msg);
    });
    thread.on('error', (err) => settle(() => reject(err)));
    thread.on('exit', (code) => settle(() => reject(new Error(`training thread exited with code ${code} before finishing`))));
  });
}

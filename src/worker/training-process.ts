import { initBackend } from '../ml/backend.ts';
import { TrainingCancelledError, type BatchProgress, type EpochStats } from '../ml/train.ts';
import { runFinetune } from './run-finetune.ts';
import { runTraining } from './run-training.ts';
import type { FromTrainer, ToTrainer } from './training-messages.ts';

// One training job in a child process of the worker. A process rather than a thread: the worker's
// own event loop stays free to renew BullMQ's job lock, native TensorFlow (tfjs-node) is safe only
// once per process, and the WebAssembly heap — which never shrinks — goes away with the job.
const send = (msg: FromTrainer) => new Promise<void>((resolve) => process.send!(msg, () => resolve()));
let cancelled = false;

process.on('message', (msg: ToTrainer) => {
  if (msg.type === 'cancel') cancelled = true;
  if (msg.type === 'start') void run(msg);
});
// An orphan (the worker died) has no one to report to.
process.on('disconnect', () => process.exit(1));

async function run({ params, backend, paths }: Extract<ToTrainer, { type: 'start' }>): Promise<void> {
  try {
    await initBackend(backend);
    const callbacks = {
      onBatchEnd: (progress: BatchProgress) => void send({ type: 'batch', progress }),
      onEpochEnd: (stats: EpochStats) => void send({ type: 'epoch', stats }),
      shouldStop: () => cancelled,
    };
    const outcome = params.type === 'finetune' ? await runFinetune(params, paths, callbacks) : await runTraining(params, callbacks);
    await send({ type: 'done', outcome });
  } catch (err) {
    if (err instanceof TrainingCancelledError) await send({ type: 'cancelled' });
    else await send({ type: 'error', message: (err as Error).message, stack: (err as Error).stack });
  }
  process.exit(0);
}

import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../ml/backend.ts';
import { TrainingCancelledError } from '../ml/train.ts';
import { runTraining } from './run-training.ts';
import type { TrainingThreadInput, TrainingThreadMessage } from './thread-messages.ts';

// Training runs here, off the worker's main thread, so BullMQ keeps renewing the job lock while
// TensorFlow.js holds this thread for whole batches at a time.
const input = workerData as TrainingThreadInput;
const port = parentPort!;
const post = (msg: TrainingThreadMessage, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);
const cancel = new Int32Array(input.cancelFlag);

try {
  await initBackend(input.backend);
  const outcome = await runTraining(input.params, {
    onBatchEnd: (progress) => post({ type: 'batch', progress }),
    onEpochEnd: (stats) => post({ type: 'epoch', stats }),
    shouldStop: () => Atomics.load(cancel, 0) === 1,
  });
  post({ type: 'done', outcome }, [outcome.files.weights.buffer as ArrayBuffer]);
} catch (err) {
  if (err instanceof TrainingCancelledError) post({ type: 'cancelled' });
  else post({ type: 'error', message: (err as Error).message, stack: (err as Error).stack });
}

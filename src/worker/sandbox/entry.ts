import { initBackend } from '../../ml/backend.ts';
import { TrainingCancelledError, TrainingPausedError } from '../../ml/train.ts';
import type { BatchProgress, EpochStats } from '../../schemas/jobs.ts';
import { CheckpointStore } from '../../store/checkpoint-store.ts';
import { jobCheckpointer } from '../checkpointing.ts';
import { ImportStaging } from '../../store/import-staging.ts';
import { runEvaluateJob } from '../evaluate-job.ts';
import { exportVersionToOnnx } from '../onnx-export-job.ts';
import { runFinetuneJob } from '../finetune-job.ts';
import { runImportJob } from '../import-job.ts';
import { runTrainJob } from '../train-job.ts';
import type { FromSandbox, ToSandbox } from './protocol.ts';

// One job in a child process of the worker. A process rather than a thread: the worker's own event
// loop stays free to renew BullMQ's job lock, native TensorFlow (tfjs-node) is safe only once per
// process, and the WebAssembly heap — which never shrinks, and which a hostile imported model can
// blow up — goes away with the job (or is killed by the worker's memory watchdog).
const send = (msg: FromSandbox) => new Promise<void>((resolve) => process.send!(msg, () => resolve()));
let cancelled = false;
let pauseRequested = false;

process.on('message', (msg: ToSandbox) => {
  if (msg.type === 'cancel') cancelled = true;
  if (msg.type === 'pause') pauseRequested = true;
  if (msg.type === 'start') void run(msg);
});
// An orphan (the worker died) has no one to report to; its last checkpoint is on disk for the next attempt.
process.on('disconnect', () => process.exit(1));
// The worker decides when to stop (Ctrl-C or a group-wide SIGTERM reach this process too): it asks
// for a checkpoint first, and this process goes when it is told or when the worker is gone.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => undefined);

async function run({ params, backend, paths, checkpoint, upload, feedback, testLimit }: Extract<ToSandbox, { type: 'start' }>): Promise<void> {
  try {
    await initBackend(backend);
    if (params.type === 'export-onnx') {
      await send({ type: 'exported', ...(await exportVersionToOnnx(params.version, paths, testLimit)) });
      process.exit(0);
    }
    if (params.type === 'evaluate') {
      await send({ type: 'evaluated', evaluation: await runEvaluateJob(params, paths) });
      process.exit(0);
    }
    if (params.type === 'import') {
      if (!upload) throw new Error('an import job needs its staged upload');
      const files = await new ImportStaging(upload.dir).read(upload.jobId, params.files);
      await send({ type: 'done', outcome: await runImportJob(params, files, upload.budget, testLimit) });
      process.exit(0);
    }
    const callbacks = {
      onBatchEnd: (progress: BatchProgress) => void send({ type: 'batch', progress }),
      onEpochEnd: (stats: EpochStats) => void send({ type: 'epoch', stats }),
      shouldStop: () => cancelled,
      shouldPause: () => pauseRequested && checkpoint !== undefined,
    };
    const checkpoints =
      checkpoint &&
      jobCheckpointer(new CheckpointStore(checkpoint.dir), checkpoint.jobId, params, {
        onResume: (position) => void send({ type: 'resumed', position }),
        onUnusable: (reason) => void send({ type: 'warning', message: `checkpoint not used, training from the start: ${reason}` }),
      });
    const corrections = feedback && {
      data: { images: new Uint8Array(Buffer.from(feedback.images, 'base64')), labels: new Uint8Array(Buffer.from(feedback.labels, 'base64')), count: feedback.count },
      maxMnistDrop: feedback.maxMnistDrop,
    };
    const outcome =
      params.type === 'finetune'
        ? await runFinetuneJob(params, paths, callbacks, checkpoints, corrections, testLimit)
        : await runTrainJob(params, callbacks, checkpoints, testLimit);
    await send({ type: 'done', outcome });
  } catch (err) {
    if (err instanceof TrainingCancelledError) await send({ type: 'cancelled' });
    else if (err instanceof TrainingPausedError) await send({ type: 'paused', position: err.position });
    else await send({ type: 'error', message: (err as Error).message, stack: (err as Error).stack });
  }
  process.exit(0);
}

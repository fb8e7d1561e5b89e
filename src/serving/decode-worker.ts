import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { readIdxUpload } from '../data/idx-upload.ts';
import { readImageFolderZip } from '../data/image-folder.ts';
import { ServiceError } from '../errors.ts';
import { pngsToMnistPixels } from '../image/preprocess.ts';
import { encodeDataset, type EncodedDataset } from '../store/dataset-store.ts';
import { transferable, unpackPngs, type DecodeReply, type DecodeTask } from './decode-messages.ts';
import { nameThisThread } from '../ts-worker.ts';

// One decode thread of the pool: PNG decoding and MNIST preprocessing, whole dataset uploads
// (read, preprocessed, encoded, hashed), so that none of it holds the API's event loop.
const port = parentPort!;
nameThisThread('mnist-decode');

// Decoding is background work beside the event loop: when the cores are busy, the threads that
// answer requests should get them first. Linux gives each thread its own nice value (its id is in
// /proc/thread-self); elsewhere the thread keeps the process's priority.
const DECODE_NICE = 10;
try {
  setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), DECODE_NICE);
} catch {
  // not Linux, or not allowed: the same priority as the event loop
}

interface Outcome {
  reply: DecodeReply;
  transfer: ArrayBuffer[];
}

function datasetReply(data: EncodedDataset): Outcome {
  const images = transferable(data.images);
  const labels = transferable(data.labels);
  return { reply: { type: 'dataset', images, labels, count: data.count, classCounts: data.classCounts, sha256: data.sha256 }, transfer: [images, labels] };
}

async function run(task: DecodeTask): Promise<Outcome> {
  switch (task.type) {
    case 'pngs': {
      const pixels = transferable(pngsToMnistPixels(unpackPngs(task)));
      return { reply: { type: 'pixels', pixels }, transfer: [pixels] };
    }
    case 'imagefolder':
      return datasetReply(encodeDataset(await readImageFolderZip(Buffer.from(task.zip), task.limits)));
    case 'idx':
      return datasetReply(encodeDataset(readIdxUpload(Buffer.from(task.images), Buffer.from(task.labels), task.limits)));
  }
}

// A 4096² PNG leaves ~100 MB of buffers behind, and an idle thread allocates nothing that would make
// V8 collect them: the API's memory stayed ~140 MB up after four such requests. So a thread that goes
// idle collects once. `gc` is exposed the way V8 allows at run time (the flag is process-wide and
// harmless); without it, memory is reclaimed at the next busy spell as before.
const IDLE_COLLECT_MS = 200;
const collect = (() => {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
})();
let idleTimer: NodeJS.Timeout | undefined;

port.on('message', (task: DecodeTask) => {
  clearTimeout(idleTimer);
  run(task)
    .then(
      ({ reply, transfer }) => port.postMessage(reply, transfer),
      (err: Error) => port.postMessage({ type: 'failed', kind: err instanceof ServiceError ? err.kind : undefined, message: err.message } satisfies DecodeReply),
    )
    .finally(() => {
      if (collect) idleTimer = setTimeout(collect, IDLE_COLLECT_MS).unref();
    });
});
port.postMessage({ type: 'ready' } satisfies DecodeReply);

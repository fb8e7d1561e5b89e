import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { readIdxUpload } from '../data/idx-upload.ts';
import { readImageFolderZip } from '../data/image-folder.ts';
import { ServiceError } from '../errors.ts';
import { pngsToMnistPixels } from '../image/preprocess.ts';
import { encodeDataset, type EncodedDataset } from '../store/dataset-store.ts';
import { transferable, unpackPngs, type DecodeReply, type DecodeTask } from './decode-messages.ts';

// One decode thread of the pool: PNG decoding and MNIST preprocessing, whole dataset uploads
// (read, preprocessed, encoded, hashed), so that none of it holds the API's event loop.
const port = parentPort!;

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

port.on('message', (task: DecodeTask) => {
  run(task).then(
    ({ reply, transfer }) => port.postMessage(reply, transfer),
    (err: Error) => port.postMessage({ type: 'failed', kind: err instanceof ServiceError ? err.kind : undefined, message: err.message } satisfies DecodeReply),
  );
});
port.postMessage({ type: 'ready' } satisfies DecodeReply);

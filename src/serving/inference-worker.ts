import { parentPort, workerData } from 'node:worker_threads';
import type { BackendPreference, InferenceEnginePreference } from '../config.ts';
import { initBackend } from '../ml/backend.ts';
import { nameThisThread } from '../ts-worker.ts';
import { loadServableModel, timedRun, type ServableModel } from './inference.ts';
import type { FromPool, ToPool } from './inference-messages.ts';

// One inference thread of the pool: its own engines and its own copy of each loaded version, so
// the API's event loop only parses requests and writes responses.
const port = parentPort!;
const send = (msg: ToPool, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);
const models = new Map<number, ServableModel>();
/** Loads and model calls not answered yet: a close waits for them (ONNX Runtime aborts the process if its thread is terminated mid-run). */
const running = new Set<Promise<unknown>>();
const track = (work: Promise<unknown>) => {
  running.add(work);
  void work.finally(() => running.delete(work));
};
const { backend, engine } = workerData as { backend: BackendPreference; engine: InferenceEnginePreference };
nameThisThread('mnist-inference');

await initBackend(backend);

port.on('message', (msg: FromPool) => {
  switch (msg.type) {
    case 'load': {
      const files = { modelJson: msg.modelJson, weights: new Uint8Array(msg.weights), ...(msg.onnx && { onnx: new Uint8Array(msg.onnx) }) };
      track(
        loadServableModel(msg.version, files, engine).then(
          (model) => {
            models.set(msg.handle, model);
            send({ type: 'loaded', id: msg.id, engine: model.engine, ...(model.fallback && { fallback: model.fallback }) });
          },
          (err: Error) => send({ type: 'failed', id: msg.id, message: err.message }),
        ),
      );
      break;
    }
    case 'predict': {
      const model = models.get(msg.handle);
      if (!model) {
        send({ type: 'failed', id: msg.id, message: `model ${msg.handle} is not loaded in this worker` });
        break;
      }
      track(
        timedRun(model, new Uint8Array(msg.pixels), msg.count).then(
          ({ probabilities, seconds }) => {
            // A view of a larger buffer (ONNX Runtime's output may be) is copied so that only it moves.
            const out = probabilities.byteOffset === 0 && probabilities.byteLength === probabilities.buffer.byteLength ? probabilities : probabilities.slice();
            const buffer = out.buffer as ArrayBuffer;
            send({ type: 'probabilities', id: msg.id, probabilities: buffer, seconds }, [buffer]);
          },
          (err: Error) => send({ type: 'failed', id: msg.id, message: err.message }),
        ),
      );
      break;
    }
    case 'unload': {
      const model = models.get(msg.handle);
      models.delete(msg.handle);
      if (model) track(model.dispose());
      break;
    }
    case 'close':
      void (async () => {
        await Promise.allSettled(running);
        await Promise.allSettled([...models.values()].map((m) => m.dispose()));
        models.clear();
        send({ type: 'closed' });
      })();
      break;
  }
});
send({ type: 'ready' });

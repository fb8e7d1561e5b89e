import type { LayersModel } from '@tensorflow/tfjs-layers';
import { parentPort, workerData } from 'node:worker_threads';
import type { BackendPreference } from '../config.ts';
import { initBackend } from '../ml/backend.ts';
import { loadServableModel, timedRunModel } from './inference.ts';
import type { FromPool, ToPool } from './inference-messages.ts';

// One inference thread of the pool: its own TensorFlow.js backend and its own copy of each loaded
// version, so the API's event loop only parses requests and writes responses.
const port = parentPort!;
const send = (msg: ToPool, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);
const models = new Map<number, LayersModel>();

await initBackend((workerData as { backend: BackendPreference }).backend);

port.on('message', (msg: FromPool) => {
  switch (msg.type) {
    case 'load':
      loadServableModel(msg.version, { modelJson: msg.modelJson, weights: new Uint8Array(msg.weights) }).then(
        (model) => {
          models.set(msg.handle, model);
          send({ type: 'done', id: msg.id });
        },
        (err: Error) => send({ type: 'failed', id: msg.id, message: err.message }),
      );
      break;
    case 'predict': {
      const model = models.get(msg.handle);
      if (!model) {
        send({ type: 'failed', id: msg.id, message: `model ${msg.handle} is not loaded in this worker` });
        break;
      }
      try {
        const { probabilities, seconds } = timedRunModel(model, new Uint8Array(msg.pixels), msg.count);
        const buffer = probabilities.buffer as ArrayBuffer;
        send({ type: 'probabilities', id: msg.id, probabilities: buffer, seconds }, [buffer]);
      } catch (err) {
        send({ type: 'failed', id: msg.id, message: (err as Error).message });
      }
      break;
    }
    case 'unload':
      models.get(msg.handle)?.dispose();
      models.delete(msg.handle);
      break;
  }
});
send({ type: 'ready' });

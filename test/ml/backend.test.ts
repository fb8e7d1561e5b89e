import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { currentBackendName, initBackend } from '../../src/ml/backend.ts';
import { siblingModule } from '../../src/ts-worker.ts';

function recorder() {
  const entries: { obj: Record<string, unknown>; msg: string }[] = [];
  return { entries, log: { info: (obj: object, msg: string) => entries.push({ obj: obj as Record<string, unknown>, msg }) } };
}

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
const nativesAbsent = !installed('@tensorflow/tfjs-node') && !installed('@tensorflow/tfjs-node-gpu');

test("initBackend('wasm') selects wasm, with the project kernels, and logs it", async () => {
  const { entries, log } = recorder();
  const choice = await initBackend('wasm', log);
  assert.equal(choice.name, 'wasm');
  assert.match(choice.detail, /Conv2DBackpropFilter/);
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(currentBackendName(), 'wasm');
  assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'));
  assert.deepEqual(entries, [{ obj: { backend: 'wasm', detail: choice.detail }, msg: 'tensorflow backend selected' }]);
});

test('initBackend is idempotent', async () => {
  const first = await initBackend('wasm');
  const [second, third] = await Promise.all([initBackend('wasm'), initBackend('wasm')]);
  assert.deepEqual(second, first);
  assert.deepEqual(third, first);
  assert.equal(tf.getBackend(), 'wasm');
  // still computes, and registering the kernels again did not stack wrappers
  assert.deepEqual(Array.from(tf.tidy(() => tf.add(tf.tensor([1, 2]), tf.tensor([3, 4])).dataSync())), [4, 6]);
});

test("initBackend('cpu') selects cpu, and switching back to wasm works", async () => {
  const { entries, log } = recorder();
  const choice = await initBackend('cpu', log);
  assert.equal(choice.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.equal(entries.at(-1)?.obj.backend, 'cpu');
  assert.equal((await initBackend('wasm')).name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
});

test("initBackend('auto') falls back to wasm when neither native package is installed, and says why", { skip: !nativesAbsent && 'a native package is installed here' }, async () => {
  await initBackend('cpu'); // so 'auto' has to switch
  const { entries, log } = recorder();
  const choice = await initBackend('auto', log);
  assert.equal(choice.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.match(choice.detail, /skipped tfjs-node-gpu: not installed; tfjs-node: not installed/);
  assert.deepEqual(
    entries.map((e) => [e.msg, e.obj.candidate ?? e.obj.backend, e.obj.reason]),
    [
      ['tensorflow backend candidate skipped', 'tfjs-node-gpu', 'not installed'],
      ['tensorflow backend candidate skipped', 'tfjs-node', 'not installed'],
      ['tensorflow backend selected', 'wasm', undefined],
    ],
  );
});

test("initBackend('tensorflow') rejects with a clear error when neither native package loads", { skip: !nativesAbsent && 'a native package is installed here' }, async () => {
  await initBackend('wasm');
  await assert.rejects(initBackend('tensorflow'), (err: Error) => {
    assert.match(err.message, /no TensorFlow\.js backend for preference 'tensorflow'/);
    assert.match(err.message, /tfjs-node-gpu: not installed; tfjs-node: not installed/);
    assert.match(err.message, /install @tensorflow\/tfjs-node/);
    return true;
  });
  assert.equal(tf.getBackend(), 'wasm', 'a failed selection leaves the active backend alone');
  assert.equal((await initBackend('wasm')).name, 'wasm', 'and later calls still work');
});

test('wasm initialises and trains conv2d inside a worker thread', async () => {
  // Node 20: `--import tsx` in a Worker's execArgv runs, but tsx only installs its hooks on the main
  // thread there (it does in workers from Node 22.22.3 / 24.11.1), so a .ts worker entry fails with
  // ERR_UNKNOWN_FILE_EXTENSION. Registering tsx from inside the worker works on every version.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const backendUrl = siblingModule('../../src/ml/backend', import.meta.url).href;
  const tfUrl = import.meta.resolve('@tensorflow/tfjs-core');
  const layersUrl = import.meta.resolve('@tensorflow/tfjs-layers'); // registers the gradient functions
  const code = `
    const { parentPort } = require('node:worker_threads');
    (async () => {
      (await import(${JSON.stringify(tsxApi)})).register();
      const { initBackend } = await import(${JSON.stringify(backendUrl)});
      const tf = await import(${JSON.stringify(tfUrl)});
      await import(${JSON.stringify(layersUrl)});
      const choice = await initBackend('wasm');
      const x = tf.ones([2, 6, 6, 1]);
      const w = tf.ones([3, 3, 1, 2]);
      const dw = tf.grad((v) => tf.sum(tf.conv2d(x, v, 1, 'valid')))(w);
      parentPort.postMessage({ choice, backend: tf.getBackend(), dw: Array.from(dw.dataSync()) });
    })().catch((err) => parentPort.postMessage({ error: String(err && err.stack || err) }));
  `;
  const worker = new Worker(code, { eval: true });
  try {
    const msg = await new Promise<{ error?: string; backend?: string; dw?: number[] }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.equal(msg.error, undefined);
    assert.equal(msg.backend, 'wasm');
    assert.deepEqual(msg.dw, new Array(18).fill(2 * 4 * 4)); // each weight sees 4×4 positions × 2 images
  } finally {
    await worker.terminate();
  }
});

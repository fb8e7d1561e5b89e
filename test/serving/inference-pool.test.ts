import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { loadMnist } from '../../src/data/mnist.ts';
import { ModelLoadError } from '../../src/serving/engine.ts';
import { LocalEngine } from '../../src/serving/inference.ts';
import { InferencePool } from '../../src/serving/inference-pool.ts';
import type { ModelFiles } from '../../src/ml/model-files.ts';
import { untrainedModelFiles } from '../helpers/serving.ts';

let pool: InferencePool;
let files: ModelFiles;
let pixels: Uint8Array;
before(async () => {
  files = await untrainedModelFiles(5);
  pool = await InferencePool.start(2, 'wasm', pino({ level: 'silent' }));
  pixels = Uint8Array.from((await loadMnist('test')).images.subarray(0, 16 * 784));
});
after(() => pool.close());

test('worker threads give the same probabilities as inference on this thread', async () => {
  const local = new LocalEngine();
  const expected = (await local.predict(await local.load(1, files), pixels, 16)).probabilities;
  await local.close();
  const handle = await pool.load(1, files);
  // Enough calls at once that both threads take some.
  const results = await Promise.all(Array.from({ length: 6 }, () => pool.predict(handle, pixels.slice(), 16)));
  for (const { probabilities, seconds } of results) {
    assert.deepEqual(probabilities, expected);
    assert.ok(seconds > 0 && seconds < 10, `the thread timed its model call: ${seconds} s`);
  }
  pool.unload(handle);
});

test('a model that cannot load in the workers is a ModelLoadError, and the pool keeps working', async () => {
  await assert.rejects(pool.load(2, { modelJson: files.modelJson, weights: files.weights.subarray(0, 64) }), ModelLoadError);
  const handle = await pool.load(3, files);
  assert.equal((await pool.predict(handle, pixels.subarray(0, 784), 1)).probabilities.length, 10);
});

test('predicting with an unloaded model is an error, not a wrong answer', async () => {
  const handle = await pool.load(4, files);
  pool.unload(handle);
  await assert.rejects(pool.predict(handle, pixels.subarray(0, 784), 1), /not loaded/);
});

test('INFERENCE_ENGINE reaches the threads: auto runs model.onnx on ONNX Runtime, tfjs the layers files, and they agree', async () => {
  const onnx = await pool.load(5, files);
  const tfjsPool = await InferencePool.start(1, 'wasm', pino({ level: 'silent' }), 'tfjs');
  try {
    const tfjs = await tfjsPool.load(5, files);
    assert.deepEqual([onnx.engine, tfjs.engine], ['onnxruntime', 'tfjs']);
    const [a, b] = await Promise.all([pool.predict(onnx, pixels.slice(), 16), tfjsPool.predict(tfjs, pixels.slice(), 16)]);
    const worst = a.probabilities.reduce((m, v, i) => Math.max(m, Math.abs(v - b.probabilities[i])), 0);
    assert.ok(worst <= 1e-5, `engines differ by ${worst}`);
  } finally {
    await tfjsPool.close();
    pool.unload(onnx);
  }
});

test('closing the pool answers the calls and loads in flight, then refuses new calls (ONNX Runtime aborted the process when a thread was terminated mid-run)', async () => {
  const closing = await InferencePool.start(2, 'wasm', pino({ level: 'silent' }));
  const handle = await closing.load(6, files);
  assert.equal(handle.engine, 'onnxruntime');
  const inFlight = Array.from({ length: 8 }, () => closing.predict(handle, pixels.slice(), 16));
  const loading = closing.load(7, files); // a session being created is waited for too
  await closing.close();
  for (const { probabilities } of await Promise.all(inFlight)) assert.equal(probabilities.length, 16 * 10);
  assert.equal((await loading).engine, 'onnxruntime');
  await assert.rejects(closing.predict(handle, pixels.subarray(0, 784), 1), /closing/);
});

import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { MemoryCanaryStore } from '../../src/redis/serving-canary.ts';
import { MemoryPinStore } from '../../src/redis/serving-pin.ts';
import { PredictBatcher } from '../../src/serving/batcher.ts';
import { LocalEngine } from '../../src/serving/inference.ts';
import { ModelRegistry } from '../../src/serving/model-registry.ts';
import { ModelStore } from '../../src/store/model-store.ts';
import { backfillOnnx, needsOnnx } from '../../src/worker/onnx-backfill.ts';
import { exportVersionToOnnx } from '../../src/worker/onnx-export-job.ts';
import { untrainedModelFiles, writeModelFiles } from '../helpers/serving.ts';

// Versions written before versions had a model.onnx: the workers' start-up backfill gives them one,
// and an API serving one of them on TF.js moves it onto ONNX Runtime when it hears of it.

const log = pino({ level: 'silent' });
const TEST_IMAGES = 300; // MNIST_TEST_LIMIT for these exports: the parity needs images, not all 10k
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mnist-backfill-'));
});
after(() => rm(dir, { recursive: true, force: true }));

let n = 0;
async function oldStore(count: number) {
  const store = new ModelStore(join(dir, String(n++)));
  for (let seed = 1; seed <= count; seed++) await writeModelFiles(store, await untrainedModelFiles(seed, { onnx: false }), seed);
  const exports: number[] = [];
  const announced: number[] = [];
  const deps = {
    store,
    log,
    claim: async () => true,
    // Replicas reload on the announcement: by then model.onnx must be there to load.
    announce: async (version: number) => {
      await stat(join(store.versionDir(version), 'model.onnx'));
      announced.push(version);
    },
    exportVersion: (version: number) => {
      exports.push(version);
      return exportVersionToOnnx(version, { modelsDir: store.root, datasetsDir: dir }, TEST_IMAGES);
    },
  };
  return { store, deps, exports, announced };
}

test('what needs an ONNX copy: no file and no record, or a record of a missing runtime; not a refusal that would repeat', () => {
  const at = new Date().toISOString();
  assert.equal(needsOnnx(false, undefined), true);
  assert.equal(needsOnnx(false, { status: 'unavailable', file: null, reason: 'no runtime', exportedAt: at }), true);
  assert.equal(needsOnnx(false, { status: 'unsupported', file: null, reason: 'layer x (LSTM)', exportedAt: at }), false);
  assert.equal(needsOnnx(false, { status: 'parity-failed', file: null, reason: 'differs', exportedAt: at }), false);
  assert.equal(needsOnnx(true, undefined), false);
});

test('older versions get a proven model.onnx, newest first, their metadata keeps the rest; a second run has nothing to do', async () => {
  const { store, deps, exports, announced } = await oldStore(2);
  const before = await store.readMetadata(1);
  assert.equal((await store.readModelFiles(1)).onnx, undefined);

  assert.deepEqual(await backfillOnnx(deps), [2, 1]);
  assert.deepEqual(exports, [2, 1]);
  assert.deepEqual(announced, [2, 1], 'each announced once its file was in place');
  for (const version of [1, 2]) {
    const meta = await store.readMetadata(version);
    assert.equal(meta.onnx?.status, 'exported');
    assert.equal(meta.onnx?.file, 'model.onnx');
    assert.equal(meta.onnx?.parity?.images, TEST_IMAGES);
    assert.ok(meta.onnx!.parity!.maxProbabilityDifference <= 1e-5);
    assert.equal(meta.onnx?.parity?.argmaxDisagreements, 0);
    assert.ok((await store.readModelFiles(version)).onnx!.length > 1000);
  }
  const { onnx, ...rest } = await store.readMetadata(1);
  assert.ok(onnx);
  assert.deepEqual(rest, before, 'nothing else in metadata.json changed');

  assert.deepEqual(await backfillOnnx(deps), []);
  assert.deepEqual(exports, [2, 1], 'nothing exported twice');
});

test('a version another worker claimed, or whose refusal is on record, is left alone; a missing runtime is tried again', async () => {
  const { store, deps, exports } = await oldStore(3);
  const at = new Date().toISOString();
  await store.addOnnx(3, undefined, { status: 'unsupported', file: null, reason: 'no ONNX translation for layer x (LSTM)', exportedAt: at });
  await store.addOnnx(2, undefined, { status: 'unavailable', file: null, reason: 'onnxruntime-node does not load', exportedAt: at });
  const done = await backfillOnnx({ ...deps, claim: async (version) => version !== 1 });
  assert.deepEqual(done, [2]);
  assert.deepEqual(exports, [2]);
  assert.equal((await store.readMetadata(3)).onnx?.status, 'unsupported');
  assert.equal((await store.readMetadata(1)).onnx, undefined, 'claimed elsewhere');
  await assert.rejects(stat(join(store.versionDir(3), 'model.onnx')));
});

test('a version deleted while it was exported is not brought back; a failed export leaves it on TF.js and the rest go on', async () => {
  const { store, deps } = await oldStore(2);
  const done = await backfillOnnx({
    ...deps,
    exportVersion: async (version) => {
      if (version === 1) throw new Error('the sandbox ran out of memory');
      const result = await deps.exportVersion(version);
      await store.deleteVersion(version);
      return result;
    },
  });
  assert.deepEqual(done, []);
  assert.deepEqual(await store.listVersions(), [1]);
  assert.equal((await store.readMetadata(1)).onnx, undefined);
  assert.deepEqual((await readdir(store.root)).filter((f) => f.startsWith('.')), [], 'no temporary file left');
  assert.deepEqual((await readdir(store.versionDir(1))).sort(), ['group1-shard1of1.bin', 'metadata.json', 'model.json']);
});

test('an API serving an older version on TF.js moves it onto ONNX Runtime once its model.onnx appears, answering throughout', async () => {
  const { store, deps } = await oldStore(1);
  const engine = new LocalEngine();
  const registry = new ModelRegistry(store, engine, log, { cacheSize: 2, pins: new MemoryPinStore(), canaries: new MemoryCanaryStore() });
  const batcher = new PredictBatcher(registry, engine, { maxBatchSize: 8, timeoutMs: 0 });
  const image = new Uint8Array(784).fill(40);
  try {
    await registry.refresh();
    assert.deepEqual((await registry.status()).loaded, [{ version: 1, engine: 'tfjs' }]);
    const onTfjs = (await batcher.predict([image])).predictions[0].probabilities;

    await backfillOnnx(deps);
    const during = batcher.predict([image]); // in flight across the swap
    await registry.refresh(); // what the worker's announcement triggers
    assert.deepEqual((await registry.status()).loaded, [{ version: 1, engine: 'onnxruntime' }]);
    const answers = [await during, await batcher.predict([image])];
    for (const answer of answers) {
      assert.equal(answer.modelVersion, 1);
      answer.predictions[0].probabilities.forEach((p, digit) => assert.ok(Math.abs(p - onTfjs[digit]) <= 1e-5, `digit ${digit}: ${p} vs ${onTfjs[digit]}`));
    }
  } finally {
    registry.dispose();
    await engine.close();
  }
});

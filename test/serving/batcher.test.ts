import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { PredictBatcher, PredictQueueFullError, type BatchReport } from '../../src/serving/batcher.ts';
import { ModelRegistry, NoModelError } from '../../src/serving/model-registry.ts';
import { ModelStore } from '../../src/store/model-store.ts';
import { fakeImage, FakeEngine, writeFakeVersion } from '../helpers/fake-engine.ts';

let base: string;
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'mnist-batcher-'));
});
after(() => rm(base, { recursive: true, force: true }));

let n = 0;
async function setup(opts: { maxBatchSize?: number; timeoutMs?: number; versions?: number; parallelism?: number; maxQueuedImages?: number } = {}) {
  const store = new ModelStore(join(base, String(n++)));
  for (let i = 0; i < (opts.versions ?? 1); i++) await writeFakeVersion(store);
  const engine = new FakeEngine();
  engine.parallelism = opts.parallelism ?? 1;
  const registry = new ModelRegistry(store, engine, pino({ level: 'silent' }));
  await registry.refresh();
  const batches: { version: number; images: number; requests: number }[] = [];
  const reports: BatchReport[] = [];
  const batcher = new PredictBatcher(registry, engine, { maxBatchSize: opts.maxBatchSize ?? 32, timeoutMs: opts.timeoutMs ?? 1, maxQueuedImages: opts.maxQueuedImages }, {
    onBatch: (report) => {
      reports.push(report);
      batches.push({ version: report.version, images: report.images, requests: report.queueSeconds.length });
    },
  });
  return { store, engine, registry, batcher, batches, reports };
}

test('concurrent requests go to the model as one call, and each gets its own answers in order', async () => {
  const { batcher, engine, batches } = await setup();
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.predict([fakeImage(i), fakeImage((i + 1) % 10)])));
  assert.deepEqual(engine.calls, [{ version: 1, count: 20 }]);
  assert.deepEqual(batches, [{ version: 1, images: 20, requests: 10 }]);
  results.forEach((r, i) => {
    assert.equal(r.modelVersion, 1);
    assert.deepEqual(r.predictions.map((p) => p.digit), [i, (i + 1) % 10]);
    assert.equal(r.predictions[0].probabilities.length, 10);
  });
});

test('a batch holds at most maxBatchSize images; the rest go in the next call', async () => {
  const { batcher, engine } = await setup({ maxBatchSize: 8 });
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => batcher.predict([fakeImage(i % 10)])));
  assert.deepEqual(engine.calls.map((c) => c.count), [8, 8, 4]);
  assert.deepEqual(results.map((r) => r.predictions[0].digit), Array.from({ length: 20 }, (_, i) => i % 10));
});

test('a request larger than maxBatchSize runs whole, on its own', async () => {
  const { batcher, engine } = await setup({ maxBatchSize: 4 });
  const [big, small] = await Promise.all([batcher.predict(Array.from({ length: 6 }, (_, i) => fakeImage(i))), batcher.predict([fakeImage(9)])]);
  assert.deepEqual(engine.calls.map((c) => c.count), [6, 1]);
  assert.deepEqual(big.predictions.map((p) => p.digit), [0, 1, 2, 3, 4, 5]);
  assert.equal(small.predictions[0].digit, 9);
});

test('requests for different versions are never mixed in one call', async () => {
  const { batcher, engine } = await setup({ versions: 3 });
  const asked = [undefined, 1, 2, undefined, 1, 3, 2];
  const results = await Promise.all(asked.map((v, i) => batcher.predict([fakeImage(i)], v)));
  results.forEach((r, i) => assert.equal(r.modelVersion, asked[i] ?? 3));
  // One call per version asked for; "the served one" is a batch of its own, as it may change before the call.
  assert.deepEqual(engine.calls.map((c) => c.version).sort(), [1, 2, 3, 3]);
});

test('with timeout 0, requests of the same event-loop turn still share a call', async () => {
  const { batcher, engine } = await setup({ timeoutMs: 0 });
  await Promise.all([batcher.predict([fakeImage(1)]), batcher.predict([fakeImage(2)]), batcher.predict([fakeImage(3)])]);
  assert.deepEqual(engine.calls.map((c) => c.count), [3]);
});

test('while the engine is busy, arriving requests queue up and go together in the next call', async () => {
  const { batcher, engine, reports } = await setup({ timeoutMs: 0 });
  engine.predictDelayMs = 50;
  const first = batcher.predict([fakeImage(0)]);
  await new Promise((r) => setTimeout(r, 10)); // the first call is running
  const later = Array.from({ length: 5 }, (_, i) => batcher.predict([fakeImage(i)]));
  await Promise.all([first, ...later]);
  assert.deepEqual(engine.calls.map((c) => c.count), [1, 5]);
  // Each request's wait in the queue is reported: the first found the engine idle, the others waited for its call.
  const [alone, queued] = reports;
  assert.equal(alone.queueSeconds.length, 1);
  assert.ok(alone.queueSeconds[0] < 0.03, `the first request waited ${alone.queueSeconds[0]} s for an idle engine`);
  assert.equal(queued.queueSeconds.length, 5);
  for (const s of queued.queueSeconds) assert.ok(s >= 0.03 && s < 1, `a request behind a 50 ms call waited ${s} s`);
  assert.ok(queued.modelSeconds >= 0);
});

test('with two inference threads, two batches run at once', async () => {
  const { batcher, engine } = await setup({ maxBatchSize: 2, parallelism: 2 });
  engine.predictDelayMs = 30;
  await Promise.all(Array.from({ length: 8 }, (_, i) => batcher.predict([fakeImage(i)])));
  assert.equal(engine.maxConcurrent, 2);
});

test('an error reaches every request of its batch, and the next batch works', async () => {
  const store = new ModelStore(join(base, 'empty'));
  const engine = new FakeEngine();
  const registry = new ModelRegistry(store, engine, pino({ level: 'silent' }));
  const batcher = new PredictBatcher(registry, engine, { maxBatchSize: 32, timeoutMs: 1 });
  const settled = await Promise.allSettled([batcher.predict([fakeImage(1)]), batcher.predict([fakeImage(2)])]);
  assert.deepEqual(settled.map((s) => s.status === 'rejected' && s.reason instanceof NoModelError), [true, true]);
  await writeFakeVersion(store);
  assert.equal((await batcher.predict([fakeImage(5)])).predictions[0].digit, 5);
});

test('an image of the wrong size is refused before it can shift the others', async () => {
  const { batcher } = await setup();
  assert.throws(() => batcher.predict([new Uint8Array(100)]), RangeError);
});

test('past maxQueuedImages waiting, a request is refused at once (503, Retry-After 1); the queued ones run, and an empty queue takes any size', async () => {
  const { batcher, engine } = await setup({ maxQueuedImages: 10, maxBatchSize: 32 });
  engine.predictDelayMs = 50;
  const images = (n: number) => Array.from({ length: n }, (_, i) => fakeImage(i));
  const first = batcher.predict(images(1));
  while (engine.calls.length === 0) await new Promise((r) => setTimeout(r, 1)); // computing: not queued
  const queued = [batcher.predict(images(6)), batcher.predict(images(4))]; // 10 waiting: full
  const refused = batcher.predict(images(1));
  await assert.rejects(refused, (err: PredictQueueFullError) => err instanceof PredictQueueFullError && err.kind === 'unavailable' && err.retryAfterSeconds === 1 && /10 images are waiting .*PREDICT_MAX_QUEUED_IMAGES 10/.test(err.message));
  assert.throws(() => batcher.admit(1), PredictQueueFullError);
  const answers = await Promise.all([first, ...queued]);
  assert.deepEqual(answers.map((a) => a.predictions.length), [1, 6, 4]);
  assert.deepEqual(engine.calls.map((c) => c.count), [1, 10]);
  assert.equal((await batcher.predict(images(12))).predictions.length, 12, 'more than the bound, into an empty queue');
});

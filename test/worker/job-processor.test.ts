import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UnrecoverableError, type Job } from 'bullmq';
import { pino } from 'pino';
import { CheckpointStore } from '../../src/store/checkpoint-store.ts';
import { ModelStore } from '../../src/store/model-store.ts';
import { createJobProcessor } from '../../src/worker/job-processor.ts';
import { fakeMetadata, fakeModelFiles } from '../helpers/store-fixtures.ts';

// The decisions the processor takes before any training starts; no Redis, no training process.
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function setup(maxStalls = 2) {
  const dir = await mkdtemp(join(tmpdir(), 'processor-'));
  dirs.push(dir);
  const store = new ModelStore(join(dir, 'models'));
  const checkpoints = new CheckpointStore(join(dir, 'models', '.checkpoints'));
  const published: number[] = [];
  const processor = createJobProcessor({
    store,
    checkpoints,
    maxStalls,
    datasetsDir: join(dir, 'datasets'),
    backend: 'cpu',
    maxSeconds: 3600,
    maxRssBytes: 4 * 2 ** 30,
    log: pino({ level: 'silent' }),
    isCancelled: async () => false,
    publishVersion: async (v) => void published.push(v),
  });
  return { store, checkpoints, published, processor };
}

const files = fakeModelFiles(0);
const meta = (jobId: string | null) => fakeMetadata({ jobId, metrics: { testAccuracy: 0.97, testLoss: 0.1, confusionMatrix: [] }, backend: 'cpu' });
const job = (fields: Partial<Job>) =>
  ({ id: 'job-7', name: 'train', data: { type: 'train', seed: 1, epochs: 1, limit: 100 }, opts: {}, timestamp: Date.now() - 60_000, attemptsStarted: 1, attemptsMade: 0, stalledCounter: 0, ...fields }) as unknown as Job;

test('a retried job whose version an earlier attempt wrote completes with that version and writes no other', async () => {
  const { store, checkpoints, published, processor } = await setup();
  await store.writeVersion(files, meta(null));
  await store.writeVersion(files, meta('job-7'));
  await store.writeVersion(files, meta('job-8'));
  await checkpoints.write('job-7', new Uint8Array([1]));
  const result = await processor(job({ attemptsStarted: 2, stalledCounter: 1 }));
  assert.deepEqual(result, { modelVersion: 2, metrics: { testAccuracy: 0.97, testLoss: 0.1 } });
  assert.deepEqual(await store.listVersions(), [3, 2, 1]);
  assert.deepEqual(published, [2], 'announced again, in case the crash came before the announcement');
  assert.equal(await checkpoints.read('job-7'), undefined, 'its checkpoint is removed');
});

test('that holds even when the job has used up its crashes', async () => {
  const { store, processor } = await setup(1);
  await store.writeVersion(files, meta('job-7'));
  assert.equal((await processor(job({ attemptsStarted: 3, stalledCounter: 2 }))).modelVersion, 1);
});

test('a job found stalled more than JOB_MAX_STALLS times fails for good with the reason, and loses its checkpoint', async () => {
  const { store, checkpoints, processor } = await setup(2);
  await checkpoints.write('job-7', new Uint8Array([1]));
  await assert.rejects(processor(job({ attemptsStarted: 4, stalledCounter: 3 })), (err: Error) => {
    assert.ok(err instanceof UnrecoverableError);
    assert.match(err.message, /^worker crashed 3 times while running this job .* given up after JOB_MAX_STALLS=2$/);
    return true;
  });
  assert.equal(await checkpoints.read('job-7'), undefined);
  assert.deepEqual(await store.listVersions(), []);
});

test('a malformed job fails for good without a retry', async () => {
  const { processor } = await setup();
  await assert.rejects(processor(job({ data: { type: 'train' } })), UnrecoverableError);
});

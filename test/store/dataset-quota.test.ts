import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { LabelledImages } from '../../src/data/labelled-images.ts';
import { DatasetQuotaError, DatasetStore, encodeDataset } from '../../src/store/dataset-store.ts';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dataset-quota-'));
});
after(() => rm(root, { recursive: true, force: true }));

/** `count` blank digits labelled `label`: 784 + 1 bytes each once stored. */
const digits = (count: number, label: number): LabelledImages => ({ images: new Uint8Array(count * 784), labels: new Uint8Array(count).fill(label), count });
const meta = { name: 'test', format: 'idx' } as const;

test('two datasets added at once cannot both take the last free bytes', async () => {
  const store = new DatasetStore(join(root, 'race'), 12_000); // room for one 10-digit dataset (~8.2 kB), not two
  const outcomes = await Promise.allSettled([store.add(encodeDataset(digits(10, 1)), meta), store.add(encodeDataset(digits(10, 2)), meta)]);
  assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected']);
  const refused = (outcomes[1] as PromiseRejectedResult).reason as DatasetQuotaError;
  assert.ok(refused instanceof DatasetQuotaError);
  assert.match(refused.message, /already use 8,\d{3} of 12,000 bytes \(DATASETS_MAX_BYTES\), 3,\d{3} free/);
  assert.equal((await store.list()).length, 1);
});

test('the same content added twice at once is stored once, and the second answer says so', async () => {
  const store = new DatasetStore(join(root, 'twice'));
  const [a, b] = await Promise.all([store.add(encodeDataset(digits(3, 7)), meta), store.add(encodeDataset(digits(3, 7)), { name: 'again', format: 'imagefolder' })]);
  assert.deepEqual([a.created, b.created], [true, false]);
  assert.deepEqual(b.dataset, a.dataset);
  assert.equal((await readdir(join(root, 'twice'))).length, 1);
});

test('with no limit (0) any amount is stored', async () => {
  const store = new DatasetStore(join(root, 'unlimited'), 0);
  for (let label = 0; label < 3; label++) assert.ok((await store.add(encodeDataset(digits(100, label)), meta)).created);
});

import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CheckpointStore } from '../../src/store/checkpoint-store.ts';
import { sweepCheckpoints } from '../../src/worker/checkpointing.ts';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function newStore(): Promise<CheckpointStore> {
  const dir = await mkdtemp(join(tmpdir(), 'checkpoints-'));
  dirs.push(dir);
  return new CheckpointStore(join(dir, '.checkpoints'));
}

test('a job has no checkpoint until one is written; the latest write wins, whole; remove forgets it', async () => {
  const store = await newStore();
  assert.equal(await store.read('job-1'), undefined);
  assert.deepEqual(await store.list(), []);
  await store.write('job-1', new Uint8Array([1, 2, 3]));
  await store.write('job-1', new Uint8Array([4, 5]));
  assert.deepEqual(await store.read('job-1'), new Uint8Array([4, 5]));
  assert.deepEqual(await store.list(), ['job-1']);
  assert.equal(await store.remove('job-1'), true);
  assert.equal(await store.remove('job-1'), false);
  assert.equal(await store.read('job-1'), undefined);
  assert.deepEqual(await readdir(store.root), [], 'no temporary files are left');
});

test('any job id stays a file inside the directory and lists back as itself', async () => {
  const store = await newStore();
  const ids = ['../../etc/passwd', '.tmp-x', 'a/b', 'ü 7'];
  for (const [i, id] of ids.entries()) await store.write(id, new Uint8Array([i]));
  assert.deepEqual((await store.list()).sort(), [...ids].sort());
  for (const [i, id] of ids.entries()) assert.deepEqual(await store.read(id), new Uint8Array([i]));
  assert.equal((await readdir(store.root)).length, ids.length);
});

test('a temporary file of a crashed write is never read as a checkpoint and is removed when stale', async () => {
  const store = await newStore();
  await store.write('job-1', new Uint8Array([1]));
  const debris = join(store.root, '.tmp-crashed');
  await writeFile(debris, 'half');
  assert.deepEqual(await store.list(), ['job-1']);
  assert.deepEqual(await store.removeStaleTemp(60_000), [], 'a fresh one may belong to a live writer');
  const old = new Date(Date.now() - 2 * 3600_000);
  await utimes(debris, old, old);
  assert.deepEqual(await store.removeStaleTemp(60_000), ['.tmp-crashed']);
});

test('the sweep removes the checkpoints of jobs that ended or are gone, and keeps the others', async () => {
  const store = await newStore();
  const states: Record<string, string> = { a: 'active', b: 'completed', c: 'failed', d: 'unknown', e: 'waiting', f: 'delayed' };
  for (const id of Object.keys(states)) await store.write(id, new Uint8Array([1]));
  const removed = await sweepCheckpoints(store, async (id) => states[id]);
  assert.deepEqual(removed.sort(), ['b', 'c', 'd']);
  assert.deepEqual((await store.list()).sort(), ['a', 'e', 'f']);
});

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ModelStore, VersionNotFoundError } from '../../src/store/model-store.ts';
import { pruneModelVersions, selectVersionsToDelete } from '../../src/store/retention.ts';
import { fakeMetadata, fakeModelFiles } from '../helpers/store-fixtures.ts';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function storeWith(count: number): Promise<ModelStore> {
  const dir = await mkdtemp(join(tmpdir(), 'retention-'));
  dirs.push(dir);
  const store = new ModelStore(join(dir, 'models'));
  for (let i = 1; i <= count; i++) await store.writeVersion(files(i), meta());
  return store;
}

const files = (tag: number) => fakeModelFiles(tag, 64 * 1024);

const meta = () => fakeMetadata();

test('keepLast 0 keeps every version', () => {
  assert.deepEqual(selectVersionsToDelete([1, 2, 3, 4, 5], { keepLast: 0, protect: [] }), []);
});

test('all but the newest N are deleted, oldest first, whatever the order they are listed in', () => {
  assert.deepEqual(selectVersionsToDelete([5, 1, 4, 2, 3], { keepLast: 2, protect: [] }), [1, 2, 3]);
  assert.deepEqual(selectVersionsToDelete([3, 2, 1], { keepLast: 3, protect: [] }), []);
  assert.deepEqual(selectVersionsToDelete([3, 2, 1], { keepLast: 10, protect: [] }), []);
  assert.deepEqual(selectVersionsToDelete([], { keepLast: 1, protect: [7] }), []);
});

test('pinned, served and in-use versions survive however old they are', () => {
  const versions = [1, 2, 3, 4, 5, 6, 7, 8];
  // pinned 2, served by replicas 2 and 5, base of a queued fine-tune 1; a protected version that no longer exists changes nothing
  assert.deepEqual(selectVersionsToDelete(versions, { keepLast: 2, protect: [2, 5, 2, 1, 99] }), [3, 4, 6]);
});

test('the newest version is never deleted, so no version number is handed out twice', () => {
  for (let keepLast = 1; keepLast <= 4; keepLast++) {
    const doomed = selectVersionsToDelete([4, 9, 2, 7], { keepLast, protect: [] });
    assert.ok(!doomed.includes(9), `keepLast ${keepLast} deleted the newest: ${doomed}`);
  }
});

test('a keepLast that is not a whole number ≥ 0 is refused', () => {
  assert.throws(() => selectVersionsToDelete([1], { keepLast: -1, protect: [] }), RangeError);
  assert.throws(() => selectVersionsToDelete([1], { keepLast: 1.5, protect: [] }), RangeError);
});

test('on disk: the chosen versions go, the others keep every file, no trash is left and the next version is numbered after the newest', async () => {
  const store = await storeWith(6);
  const deleted = await pruneModelVersions(store, { keepLast: 2, protect: [2] });
  assert.deepEqual(deleted, [1, 3, 4]);
  assert.deepEqual(await store.listVersions(), [6, 5, 2]);
  assert.deepEqual((await readdir(store.root)).sort(), ['2', '5', '6']);
  assert.deepEqual([...(await store.readModelFiles(2)).weights.subarray(0, 3)], [2, 2, 2]);
  await assert.rejects(store.readMetadata(3), VersionNotFoundError);
  assert.equal(await store.writeVersion(files(7), meta()), 7);
  // Running again with the same policy deletes only what became old.
  assert.deepEqual(await pruneModelVersions(store, { keepLast: 2, protect: [2] }), [5]);
});

test('deleting a version another pruner already deleted is not an error', async () => {
  const store = await storeWith(3);
  const [a, b] = await Promise.all([pruneModelVersions(store, { keepLast: 1, protect: [] }), pruneModelVersions(new ModelStore(store.root), { keepLast: 1, protect: [] })]);
  assert.deepEqual([...a, ...b].sort(), [1, 2], 'each version deleted exactly once');
  assert.deepEqual(await store.listVersions(), [3]);
  assert.equal(await store.deleteVersion(1), false);
});

test('a reader racing a deletion gets the version whole or "does not exist", never part of it', async () => {
  const store = await storeWith(1);
  for (let round = 0; round < 20; round++) {
    const version = await store.writeVersion(files(round + 2), meta());
    const reads = Array.from({ length: 8 }, () =>
      store.readModelFiles(version).then(
        (f) => {
          assert.equal(f.weights.length, 64 * 1024);
          assert.ok(f.weights.every((b) => b === (round + 2) % 256));
          return 'whole';
        },
        (err) => {
          assert.ok(err instanceof VersionNotFoundError, `a reader saw ${err}`);
          return 'gone';
        },
      ),
    );
    const [deleted] = await Promise.all([store.deleteVersion(version), ...reads]);
    assert.equal(deleted, true);
    assert.ok(!(await store.listVersions()).includes(version));
  }
  assert.deepEqual(await readdir(store.root), ['1'], 'no trash directory is left behind');
});

test('a trash directory left by a crash is not listed and is cleaned with the stale temporaries', async () => {
  const store = await storeWith(2);
  await rename(store.versionDir(1), join(store.root, '.trash-1-crashed'));
  await mkdir(join(store.root, '.trash-9-crashed'));
  assert.deepEqual(await store.listVersions(), [2]);
  assert.deepEqual((await store.removeStaleTemp(-1)).sort(), ['.trash-1-crashed', '.trash-9-crashed']);
  assert.deepEqual(await readdir(store.root), ['2']);
});

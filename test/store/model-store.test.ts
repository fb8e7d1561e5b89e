import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MODEL_JSON, WEIGHTS_FILE } from '../../src/ml/model-files.ts';
import { METADATA_JSON } from '../../src/store/model-store.ts';
import { ModelStore, VersionNotFoundError } from '../../src/store/model-store.ts';
import { fakeMetadata, fakeModelFiles } from '../helpers/store-fixtures.ts';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function newStore(): Promise<ModelStore> {
  const dir = await mkdtemp(join(tmpdir(), 'store-'));
  dirs.push(dir);
  return new ModelStore(join(dir, 'models'));
}

const files = (tag: number) => fakeModelFiles(tag);

const meta = (jobId: string) => fakeMetadata({ jobId });

test('an empty or missing store has no versions', async () => {
  const store = await newStore();
  assert.deepEqual(await store.listVersions(), []);
  assert.equal(await store.latestVersion(), undefined);
  await assert.rejects(store.readMetadata(1), VersionNotFoundError);
});

test('versions are numbered 1, 2, 3 and listed newest first, each with its files and metadata', async () => {
  const store = await newStore();
  assert.equal(await store.writeVersion(files(1), meta('a')), 1);
  assert.equal(await store.writeVersion(files(2), meta('b')), 2);
  assert.equal(await store.writeVersion(files(3), meta('c')), 3);
  assert.deepEqual(await store.listVersions(), [3, 2, 1]);
  const m2 = await store.readMetadata(2);
  assert.equal(m2.version, 2);
  assert.equal(m2.jobId, 'b');
  const f2 = await store.readModelFiles(2);
  assert.deepEqual([...f2.weights], [2, 2, 2]);
  assert.deepEqual(await store.servableFiles(2), new Set([MODEL_JSON, WEIGHTS_FILE]));
  assert.deepEqual((await readdir(store.versionDir(2))).sort(), [WEIGHTS_FILE, METADATA_JSON, MODEL_JSON].sort());
});

test('concurrent writers never share a version number and leave no temporary directories', async () => {
  const store = await newStore();
  const writers = [new ModelStore(store.root), new ModelStore(store.root), store];
  const versions = await Promise.all(Array.from({ length: 12 }, (_, i) => writers[i % 3].writeVersion(files(i), meta(`job-${i}`))));
  assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i + 1));
  for (const v of versions) {
    const m = await store.readMetadata(v);
    assert.equal(m.version, v, 'metadata names the version its directory has');
    const f = await store.readModelFiles(v);
    assert.equal(`job-${f.weights[0]}`, m.jobId, 'files and metadata of a version come from the same writer');
  }
  assert.deepEqual((await readdir(store.root)).filter((n) => n.startsWith('.')), []);
});

test('a half-written temporary directory is never listed and is cleaned when stale', async () => {
  const store = await newStore();
  await store.writeVersion(files(1), meta('a'));
  const debris = join(store.root, '.tmp-crashed');
  await mkdir(debris);
  await readFile(join(store.versionDir(1), MODEL_JSON)); // sanity: version 1 readable
  assert.deepEqual(await store.listVersions(), [1]);
  assert.deepEqual(await store.removeStaleTemp(60_000), [], 'a fresh temp dir may belong to a live writer');
  const old = new Date(Date.now() - 2 * 3600_000);
  await utimes(debris, old, old);
  // A file the ONNX backfill was writing inside a version when its worker died.
  const half = join(store.versionDir(1), '.tmp-0f-model.onnx');
  await writeFile(half, 'half');
  await utimes(half, old, old);
  assert.deepEqual(await store.removeStaleTemp(60_000), ['.tmp-crashed', '1/.tmp-0f-model.onnx']);
  assert.deepEqual(await store.listVersions(), [1]);
  assert.deepEqual((await readdir(store.versionDir(1))).sort(), ['group1-shard1of1.bin', 'metadata.json', 'model.json']);
});

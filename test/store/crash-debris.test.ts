import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { METADATA_JSON } from '../../src/store/model-store.ts';
import { ModelStore } from '../../src/store/model-store.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { writeFixtureVersion } from '../helpers/fixture-model.ts';

// A worker killed between writing a version's files and renaming the directory into place leaves a
// complete-looking `.tmp-…` directory behind. It must never be listed, served or fetched.
let api: TestApi;
let store: ModelStore;

before(async () => {
  api = await startTestApi();
  store = new ModelStore(api.config.modelsDir);
  await writeFixtureVersion(store);
  // The crash: version 1's files copied into a temporary directory whose metadata claims version 2.
  const debris = join(store.root, '.tmp-0b7c2f8e-crashed');
  await cp(store.versionDir(1), debris, { recursive: true });
  const meta = JSON.parse(await readFile(join(debris, METADATA_JSON), 'utf8'));
  await writeFile(join(debris, METADATA_JSON), JSON.stringify({ ...meta, version: 2, jobId: 'crashed-job' }));
});

after(() => api?.close());

const get = (url: string) => api.app.inject({ method: 'GET', url });

test('a temporary directory left by a crash between write and rename is never listed, served or fetched', async () => {
  assert.deepEqual(await store.listVersions(), [1]);
  assert.equal(await store.latestVersion(), 1);
  await api.app.services.registry.refresh();
  const models = get('/v1/models').then((r) => r.json());
  assert.deepEqual((await models).items.map((m: { version: number }) => m.version), [1]);
  assert.equal((await models).servedVersion, 1);
  assert.equal((await get('/v1/models/2')).statusCode, 404);
  assert.equal((await get('/v1/models/2/model.json')).statusCode, 404);
  assert.equal((await get('/v1/models/.tmp-0b7c2f8e-crashed/model.json')).statusCode, 400);
});

test('the next version written takes the number the crashed writer never published', async () => {
  const { version: _, ...meta } = await store.readMetadata(1);
  const next = await store.writeVersion(await store.readModelFiles(1), { ...meta, jobId: 'next-job' });
  assert.equal(next, 2);
  assert.deepEqual({ ...(await store.readMetadata(2)) }, { ...meta, version: 2, jobId: 'next-job' });
});

import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { waitFor } from '../helpers/env.ts';
import { startCluster, type Cluster } from '../helpers/workers.ts';

// Many jobs at once on two cluster.workers: every job gets a version of its own, whole, and nothing else is
// left in the models directory.
// Four (two per worker) are enough to make the two workers race for version numbers and the models directory.
const JOBS = 4;
let cluster: Cluster;

before(async () => {
  cluster = await startCluster();
});

after(async () => {
  await cluster?.close();
});

const json = (path: string, init?: RequestInit) => cluster.json(path, init);

test(`${JOBS} jobs posted at once to two cluster.workers: ${JOBS} distinct whole versions, each naming its own job, and no debris`, async () => {
  const created = await Promise.all(
    Array.from({ length: JOBS }, (_, i) =>
      json('/v1/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'train', limit: 100, epochs: 1, batchSize: 32, seed: 100 + i }) }),
    ),
  );
  assert.deepEqual(created.map((c) => c.status), Array(JOBS).fill(202));
  const ids = created.map((c) => c.body.id as string);
  assert.equal(new Set(ids).size, JOBS);

  const finished = await waitFor('every job to finish', async () => {
    const views = await Promise.all(ids.map(async (id) => (await json(`/v1/jobs/${id}`)).body));
    return views.every((v) => ['succeeded', 'failed', 'cancelled'].includes(v.state)) ? views : undefined;
  }, 240_000, 1000).catch((err) => {
    throw new Error(`${err.message}\n${cluster.logs()}`);
  });
  for (const v of finished) assert.equal(v.state, 'succeeded', v.error);

  const versions = finished.map((v) => v.modelVersion as number);
  assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: JOBS }, (_, i) => i + 1), 'versions 1…N, none shared');
  const entries = await readdir(cluster.modelsDir);
  assert.deepEqual(entries.filter((n) => !n.startsWith('.')).map(Number).sort((a, b) => a - b), Array.from({ length: JOBS }, (_, i) => i + 1));
  assert.deepEqual(entries.filter((n) => n.startsWith('.tmp-') || n.startsWith('.trash-')), [], 'no temporary directories left');
  assert.deepEqual(await readdir(join(cluster.modelsDir, '.checkpoints')).catch(() => []), [], 'no checkpoints left');

  for (const [i, v] of finished.entries()) {
    const dir = join(cluster.modelsDir, String(v.modelVersion));
    assert.deepEqual((await readdir(dir)).sort(), ['group1-shard1of1.bin', 'metadata.json', 'model.json', 'model.onnx']);
    const meta = JSON.parse(await readFile(join(dir, 'metadata.json'), 'utf8'));
    assert.equal(meta.jobId, ids[i], `version ${v.modelVersion} was written by the job that reports it`);
    assert.equal(meta.version, v.modelVersion);
    assert.equal(meta.params.seed, 100 + i);
    const modelJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    const bytes = modelJson.weightsManifest[0].weights.reduce((n: number, w: { shape: number[] }) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal((await readFile(join(dir, 'group1-shard1of1.bin'))).length, bytes, `version ${v.modelVersion}'s weights are whole`);
  }
  assert.equal((await json('/v1/models')).body.items.length, JOBS);
});

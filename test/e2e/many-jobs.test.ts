import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { testConfig, waitFor } from '../helpers/env.ts';
import { freePort, startProcess, type Proc } from '../helpers/processes.ts';
import { startWorkerProcess, workerReady, type WorkerProc } from '../helpers/workers.ts';

// Many jobs at once on two workers: every job gets a version of its own, whole, and nothing else is
// left in the models directory.
const JOBS = 20;
let base = '';
let modelsDir = '';
let api: Proc;
const workers: WorkerProc[] = [];
let cleanup = async () => {};

before(async () => {
  const { config, cleanup: clean } = await testConfig();
  cleanup = clean;
  modelsDir = config.modelsDir;
  const port = await freePort();
  const env = { REDIS_URL: config.REDIS_URL, QUEUE_PREFIX: config.QUEUE_PREFIX, MODELS_DIR: modelsDir, DATASETS_DIR: config.datasetsDir, TF_BACKEND: 'wasm', LOG_LEVEL: 'info', PORT: String(port), HOST: '127.0.0.1', PREDICT_WORKERS: '0' };
  api = startProcess('src/api.ts', env);
  workers.push(startWorkerProcess('a', env), startWorkerProcess('b', env));
  base = `http://127.0.0.1:${port}`;
  await waitFor('the API to be ready', () => fetch(`${base}/readyz`).then((r) => r.ok, () => false), 60_000).catch((err) => {
    throw new Error(`${err.message}\n--- api ---\n${api.output()}`);
  });
  await Promise.all(workers.map((w) => workerReady(w)));
});

after(async () => {
  await Promise.all([api.stop(), ...workers.map((w) => w.stop())]);
  await cleanup();
});

const json = async (path: string, init?: RequestInit) => {
  const res = await fetch(`${base}${path}`, init);
  return { status: res.status, body: await res.json() };
};

test(`${JOBS} jobs posted at once to two workers: ${JOBS} distinct whole versions, each naming its own job, and no debris`, async () => {
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
    throw new Error(`${err.message}\n${workers.map((w) => `--- worker ${w.name} ---\n${w.output()}`).join('\n')}`);
  });
  for (const v of finished) assert.equal(v.state, 'succeeded', v.error);

  const versions = finished.map((v) => v.modelVersion as number);
  assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: JOBS }, (_, i) => i + 1), 'versions 1…N, none shared');
  const entries = await readdir(modelsDir);
  assert.deepEqual(entries.filter((n) => !n.startsWith('.')).map(Number).sort((a, b) => a - b), Array.from({ length: JOBS }, (_, i) => i + 1));
  assert.deepEqual(entries.filter((n) => n.startsWith('.tmp-') || n.startsWith('.trash-')), [], 'no temporary directories left');
  assert.deepEqual(await readdir(join(modelsDir, '.checkpoints')).catch(() => []), [], 'no checkpoints left');

  for (const [i, v] of finished.entries()) {
    const dir = join(modelsDir, String(v.modelVersion));
    assert.deepEqual((await readdir(dir)).sort(), ['group1-shard1of1.bin', 'metadata.json', 'model.json']);
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

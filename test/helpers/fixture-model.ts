import { rmSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/ml/backend.ts';
import { MODEL_JSON, ONNX_FILE, WEIGHTS_FILE, type ModelFiles } from '../../src/ml/model-files.ts';
import type { ModelMetadata } from '../../src/schemas/models.ts';
import type { ModelStore } from '../../src/store/model-store.ts';
import { runTrainJob } from '../../src/worker/train-job.ts';
import { trainJob } from './job-data.ts';

/**
 * The one trained model the tests share: 10,000 MNIST images × 1 epoch of the default recipe
 * (~97.5 % test accuracy, ~15 s on two cores). `npm test` (scripts/test.ts) trains it once before the
 * groups run and hands its directory to every test process in MNIST_TEST_FIXTURE; a test file run
 * on its own trains it on first use, once per process.
 */
export const FIXTURE_TRAINING = trainJob({ limit: 10_000, epochs: 1, seed: 2024 });

export const FIXTURE_ENV = 'MNIST_TEST_FIXTURE';
const METADATA = 'metadata.json';

export interface Fixture {
  files: ModelFiles;
  metadata: Omit<ModelMetadata, 'version'>;
}

/** Trains the fixture and writes it to `dir` (whole or not at all). */
export async function buildFixture(dir: string): Promise<void> {
  await initBackend('wasm');
  const outcome = await runTrainJob(FIXTURE_TRAINING);
  const metadata: Fixture['metadata'] = {
    jobId: null,
    createdAt: new Date().toISOString(),
    architecture: FIXTURE_TRAINING.architecture,
    params: FIXTURE_TRAINING,
    dataset: outcome.dataset,
    history: outcome.history,
    metrics: outcome.metrics,
    onnx: outcome.onnx,
    backend: outcome.backend,
    durationMs: outcome.durationMs,
  };
  const tmp = `${dir}.tmp-${process.pid}`;
  await mkdir(tmp, { recursive: true });
  await writeFile(join(tmp, MODEL_JSON), JSON.stringify(outcome.files.modelJson));
  await writeFile(join(tmp, WEIGHTS_FILE), outcome.files.weights);
  if (!outcome.files.onnx) throw new Error(`the fixture has no model.onnx: ${outcome.onnx.reason}`);
  await writeFile(join(tmp, ONNX_FILE), outcome.files.onnx);
  await writeFile(join(tmp, METADATA), JSON.stringify(metadata));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
}

let local: Promise<string> | undefined;

async function fixtureDir(): Promise<string> {
  const shared = process.env[FIXTURE_ENV];
  if (shared) return shared;
  local ??= (async () => {
    const dir = join(tmpdir(), `mnist-test-fixture-${process.pid}`);
    await buildFixture(dir);
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  })();
  return local;
}

/** The fixture model's files and metadata. */
export async function fixtureModel(): Promise<Fixture> {
  const dir = await fixtureDir();
  const [modelJson, weights, onnx, metadata] = await Promise.all([
    readFile(join(dir, MODEL_JSON), 'utf8'),
    readFile(join(dir, WEIGHTS_FILE)),
    readFile(join(dir, ONNX_FILE)),
    readFile(join(dir, METADATA), 'utf8'),
  ]);
  return { files: { modelJson: JSON.parse(modelJson), weights: new Uint8Array(weights), onnx: new Uint8Array(onnx) }, metadata: JSON.parse(metadata) };
}

/** Writes the fixture model into `store` as its next version, as a finished train job would. */
export async function writeFixtureVersion(store: ModelStore): Promise<number> {
  const { files, metadata } = await fixtureModel();
  return store.writeVersion(files, { ...metadata, createdAt: new Date().toISOString() });
}

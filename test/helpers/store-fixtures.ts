import type { ModelMetadata } from '../../src/schemas/models.ts';
import { WEIGHTS_FILE, type ModelFiles } from '../../src/ml/model-files.ts';

/**
 * Stand-in files for store tests: the store never parses a model, so a tagged topology and
 * `weightBytes` bytes of `tag` are enough to tell versions apart.
 */
export const fakeModelFiles = (tag = 0, weightBytes = 3): ModelFiles => ({
  modelJson: { modelTopology: { tag }, format: 'layers-model', weightsManifest: [{ paths: [WEIGHTS_FILE], weights: [] }] } as unknown as ModelFiles['modelJson'],
  weights: new Uint8Array(weightBytes).fill(tag),
});

/** Metadata of a version as a worker would write it, with `overrides` on top. */
export const fakeMetadata = (overrides: Partial<Omit<ModelMetadata, 'version'>> = {}): Omit<ModelMetadata, 'version'> => ({
  jobId: null,
  createdAt: new Date().toISOString(),
  architecture: 'cnn',
  params: {},
  dataset: { name: 'mnist', trainCount: 1, testCount: 1, sha256: 'x' },
  history: [],
  metrics: { testAccuracy: 0.5, testLoss: 1, confusionMatrix: [] },
  backend: 'wasm',
  durationMs: 1,
  ...overrides,
});

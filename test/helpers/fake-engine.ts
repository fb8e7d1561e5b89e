import type { io } from '@tensorflow/tfjs-core';
import { ModelLoadError, type InferenceEngine, type ModelCall, type ModelHandle } from '../../src/serving/engine.ts';
import { WEIGHTS_FILE } from '../../src/ml/model-files.ts';
import type { ModelStore } from '../../src/store/model-store.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An inference engine without TensorFlow, for testing the registry and the batcher on their own:
 * a "model" answers digit = (first pixel of the image) mod 10 with probability 1, and a version
 * written with `broken: true` fails to load. It records what it was asked to do.
 */
export class FakeEngine implements InferenceEngine {
  parallelism = 1;
  loadDelayMs = 0;
  predictDelayMs = 0;
  readonly loads: number[] = [];
  readonly unloads: number[] = [];
  readonly calls: { version: number; count: number }[] = [];
  readonly live = new Map<number, number>();
  private nextId = 1;
  private running = 0;
  maxConcurrent = 0;

  async load(version: number, files: { modelJson: io.ModelJSON }): Promise<ModelHandle> {
    this.loads.push(version);
    if (this.loadDelayMs) await sleep(this.loadDelayMs);
    if ((files.modelJson.modelTopology as { broken?: boolean }).broken) throw new ModelLoadError(`version ${version} is broken`);
    const handle = { id: this.nextId++, version, engine: 'tfjs' as const };
    this.live.set(handle.id, version);
    return handle;
  }

  async predict(handle: ModelHandle, pixels: Uint8Array, count: number): Promise<ModelCall> {
    if (!this.live.has(handle.id)) throw new Error(`predict on unloaded model ${handle.id} (version ${handle.version})`);
    this.calls.push({ version: handle.version, count });
    this.running++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.running);
    try {
      if (this.predictDelayMs) await sleep(this.predictDelayMs);
      if (!this.live.has(handle.id)) throw new Error(`model ${handle.id} (version ${handle.version}) was unloaded during a predict`);
      const out = new Float32Array(count * 10);
      for (let i = 0; i < count; i++) out[i * 10 + (pixels[i * 784] % 10)] = 1;
      return { probabilities: out, seconds: this.predictDelayMs / 1000 };
    } finally {
      this.running--;
    }
  }

  unload(handle: ModelHandle): void {
    if (this.live.delete(handle.id)) this.unloads.push(handle.version);
  }

  get loadedVersions(): number[] {
    return [...this.live.values()].sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    this.live.clear();
  }
}

/** Writes a version the FakeEngine can "load" (or not, when broken) as the next number. */
export function writeFakeVersion(store: ModelStore, opts: { broken?: boolean } = {}): Promise<number> {
  const modelJson = { modelTopology: { broken: opts.broken ?? false }, format: 'layers-model', weightsManifest: [{ paths: [WEIGHTS_FILE], weights: [] }] } as unknown as io.ModelJSON;
  return store.writeVersion(
    { modelJson, weights: new Uint8Array(4) },
    {
      jobId: null,
      createdAt: new Date().toISOString(),
      architecture: 'fake',
      params: {},
      dataset: { name: 'none', trainCount: 0, testCount: 0, sha256: '0'.repeat(64) },
      history: [],
      metrics: { testAccuracy: 0, testLoss: 0, confusionMatrix: [] },
      backend: 'none',
      durationMs: 0,
    },
  );
}

/** One 784-byte image whose fake prediction is `digit`. */
export function fakeImage(digit: number): Uint8Array {
  const img = new Uint8Array(784);
  img[0] = digit;
  return img;
}

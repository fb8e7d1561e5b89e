import * as tf from '@tensorflow/tfjs-core';
import { loadLayersModel, type LayersModel } from '@tensorflow/tfjs-layers';
import type { Logger } from 'pino';
import { NUM_CLASSES } from '../ml/architectures.ts';
import { imagesToTensor, PIXELS } from '../ml/batch.ts';
import { filesToArtifacts } from '../store/model-files.ts';
import { VersionNotFoundError, type ModelStore } from '../store/model-store.ts';

export class NoModelError extends Error {
  readonly statusCode = 503;
  readonly expose = true;
  constructor() {
    super('no model has been trained yet: start one with POST /v1/jobs {"type":"train"} and predict again when it has succeeded');
  }
}

export interface Prediction {
  digit: number;
  confidence: number;
  probabilities: number[];
}

interface Loaded {
  version: number;
  model: LayersModel;
}

/**
 * The models the API serves: the latest version (hot-swapped when a newer one appears) plus a few
 * recently requested pinned versions. A new version is loaded and warmed up before it replaces the
 * current one, and one that fails to load never replaces a good one.
 */
export class ModelRegistry {
  private current: Loaded | undefined;
  private readonly others = new Map<number, Promise<Loaded>>();
  private refreshing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: ModelStore,
    private readonly log: Logger,
    private readonly cacheSize = 3,
  ) {}

  get servedVersion(): number | undefined {
    return this.current?.version;
  }

  /** Loads the latest version if it is newer than the one served; safe to call often and concurrently. */
  refresh(): Promise<void> {
    this.refreshing = this.refreshing.then(() => this.refreshOnce()).catch((err) => this.log.error({ err }, 'model refresh failed'));
    return this.refreshing;
  }

  private async refreshOnce(): Promise<void> {
    const versions = await this.store.listVersions();
    for (const version of versions) {
      if (this.current && version <= this.current.version) return;
      try {
        const loaded = await this.load(version);
        const previous = this.current;
        this.current = loaded;
        this.log.info({ version, previous: previous?.version }, 'serving model version');
        previous?.model.dispose();
        return;
      } catch (err) {
        this.log.error({ err, version }, 'model version failed to load; trying an older one');
      }
    }
  }

  private async load(version: number): Promise<Loaded> {
    const files = await this.store.readModelFiles(version);
    const model = await loadLayersModel(tf.io.fromMemory(filesToArtifacts(files)));
    const shape = model.inputs[0].shape;
    const outputs = model.outputs[0].shape;
    if (shape.slice(1).join() !== '28,28,1' || outputs[outputs.length - 1] !== NUM_CLASSES) {
      model.dispose();
      throw new Error(`version ${version} has input ${JSON.stringify(shape)} / output ${JSON.stringify(outputs)}, not a 28×28×1 → 10 classifier`);
    }
    // Warm-up: the first call compiles kernels and allocates; pay for it before taking traffic.
    tf.tidy(() => model.predict(tf.zeros([1, 28, 28, 1])));
    return { version, model };
  }

  private async get(version?: number): Promise<Loaded> {
    if (version === undefined || version === this.current?.version) {
      if (!this.current) await this.refresh();
      if (!this.current) throw new NoModelError();
      return this.current;
    }
    let pending = this.others.get(version);
    if (!pending) {
      if (!(await this.store.exists(version))) throw new VersionNotFoundError(version);
      pending = this.load(version);
      this.others.set(version, pending);
      pending.catch(() => this.others.delete(version));
      if (this.others.size > this.cacheSize) {
        const [oldest, evicted] = this.others.entries().next().value!;
        this.others.delete(oldest);
        void evicted.then((l) => l.model.dispose(), () => undefined);
      }
    } else {
      // Map order is recency order: move to the back.
      this.others.delete(version);
      this.others.set(version, pending);
    }
    return pending;
  }

  /** Classifies 28×28 images (784 bytes each, white ink on black) with one model call. */
  async predict(images: Uint8Array[], version?: number): Promise<{ modelVersion: number; predictions: Prediction[] }> {
    const { version: modelVersion, model } = await this.get(version);
    const pixels = new Uint8Array(images.length * PIXELS);
    images.forEach((img, i) => pixels.set(img, i * PIXELS));
    const probs = tf.tidy(() => model.predict(imagesToTensor(pixels, images.length)) as tf.Tensor2D);
    const flat = await probs.data();
    probs.dispose();
    const predictions = images.map((_, i) => {
      const probabilities = Array.from(flat.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES));
      let digit = 0;
      for (let c = 1; c < NUM_CLASSES; c++) if (probabilities[c] > probabilities[digit]) digit = c;
      return { digit, confidence: probabilities[digit], probabilities };
    });
    return { modelVersion, predictions };
  }

  dispose(): void {
    this.current?.model.dispose();
    this.current = undefined;
    for (const p of this.others.values()) void p.then((l) => l.model.dispose(), () => undefined);
    this.others.clear();
  }
}

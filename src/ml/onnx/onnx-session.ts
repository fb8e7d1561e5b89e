import type * as Ort from 'onnxruntime-node';
import type { LabelledImages } from '../../data/labelled-images.ts';
import { DIGIT_PIXELS, DIGIT_SIZE, NUM_CLASSES } from '../../schemas/digit.ts';
import { gatherPixels, scalePixels } from '../batch.ts';
import { ONNX_INPUT, ONNX_OUTPUT } from './export-onnx.ts';

/** onnxruntime-node did not load here (its native library, or the package, is missing): serve on TF.js. */
export class OnnxRuntimeUnavailableError extends Error {
  override readonly name = 'OnnxRuntimeUnavailableError';
}

let runtime: Promise<typeof Ort> | undefined;

/**
 * The ONNX Runtime module, loaded once per thread on first use. A dynamic import, so a machine
 * where the native library cannot load still starts, and serves on TF.js.
 */
export function onnxRuntime(): Promise<typeof Ort> {
  runtime ??= import('onnxruntime-node').then(
    (m) => ((m as unknown as { default?: typeof Ort }).default ?? m) as typeof Ort,
    (err: Error) => {
      throw new OnnxRuntimeUnavailableError(`onnxruntime-node does not load: ${err.message}`);
    },
  );
  return runtime;
}

export interface OnnxSessionOptions {
  /** Intra-op threads: 1 for serving (the inference pool is the parallelism), the cores for an evaluation. */
  threads: number;
}

/** A model.onnx loaded into an ONNX Runtime session, fed the service's 28×28 digits. */
export class OnnxModel {
  private constructor(
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
  ) {}

  static async load(bytes: Uint8Array, { threads }: OnnxSessionOptions): Promise<OnnxModel> {
    const ort = await onnxRuntime();
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Spinning threads would burn the cores the other inference threads and the API need.
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    });
    return new OnnxModel(ort, session);
  }

  /** `count` images of 784 bytes → count × classes probabilities (bytes scaled to [0, 1] as for TF.js). */
  async run(pixels: Uint8Array, count: number): Promise<Float32Array> {
    if (pixels.length !== count * DIGIT_PIXELS) throw new RangeError(`${count} images need ${count * DIGIT_PIXELS} bytes, got ${pixels.length}`);
    return this.runFloats(scalePixels(pixels), count);
  }

  /** The same on inputs already in [0, 1], laid out [count, 28, 28, 1]. */
  async runFloats(floats: Float32Array, count: number): Promise<Float32Array> {
    const input = new this.ort.Tensor('float32', floats, [count, DIGIT_SIZE, DIGIT_SIZE, 1]);
    const result = await this.session.run({ [ONNX_INPUT]: input });
    const output = result[ONNX_OUTPUT];
    try {
      return output.data as Float32Array;
    } finally {
      input.dispose();
    }
  }

  /** Probabilities for the examples at `indices`, [indices × 10], as evaluate.ts's predictProbabilities gives TF.js's. */
  async probabilities(data: LabelledImages, indices: Uint32Array, batchSize = 1000): Promise<Float32Array> {
    const out = new Float32Array(indices.length * NUM_CLASSES);
    for (let start = 0; start < indices.length; start += batchSize) {
      const batch = indices.subarray(start, Math.min(start + batchSize, indices.length));
      out.set(await this.runFloats(gatherPixels(data.images, batch), batch.length), start * NUM_CLASSES);
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

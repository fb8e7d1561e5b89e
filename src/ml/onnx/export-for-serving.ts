import { availableParallelism } from 'node:os';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { LabelledImages } from '../../data/labelled-images.ts';
import type { OnnxExport } from '../../schemas/models.ts';
import { predictProbabilities, scoreProbabilities, type Evaluation } from '../evaluate.ts';
import { exportOnnx, OnnxUnsupportedError } from './export-onnx.ts';
import { OPSET } from './onnx-graph.ts';
import { compareProbabilities } from './onnx-parity.ts';
import { ONNX_FILE } from '../model-files.ts';
import { OnnxModel, onnxRuntime, OnnxRuntimeUnavailableError } from './onnx-session.ts';

export interface ServingExport {
  /** The bytes of model.onnx, only when its parity held. */
  onnx?: Uint8Array;
  record: OnnxExport;
  /** The version's scores on `indices`, from the engine that will serve it. */
  evaluation: Evaluation;
}

/**
 * Exports a model to ONNX and proves the copy: both engines run the same test images, and the file
 * is kept only if every probability agrees within 1e-5 and every unambiguous image gets the same
 * digit. The test images are the ones the job scores the version on anyway, so the TF.js pass is the
 * evaluation it would have run, and the evaluation reported is the served engine's.
 */
export async function exportForServing(model: LayersModel, test: LabelledImages, indices: Uint32Array, threads = availableParallelism()): Promise<ServingExport> {
  const exportedAt = new Date().toISOString();
  let started = performance.now();
  const reference = predictProbabilities(model, test, indices);
  const tfjsSeconds = (performance.now() - started) / 1000;
  const tfjsEvaluation = () => scoreProbabilities(reference, test, indices);
  let bytes: Uint8Array;
  try {
    bytes = exportOnnx(model);
  } catch (err) {
    if (!(err instanceof OnnxUnsupportedError)) throw err;
    return { record: { status: 'unsupported', file: null, reason: `no ONNX translation for ${err.message}`, exportedAt }, evaluation: tfjsEvaluation() };
  }
  let onnx: OnnxModel;
  let runtimeVersion: string;
  try {
    runtimeVersion = (await onnxRuntime()).env.versions.node ?? 'unknown';
    onnx = await OnnxModel.load(bytes, { threads });
  } catch (err) {
    if (!(err instanceof OnnxRuntimeUnavailableError)) throw err;
    return { record: { status: 'unavailable', file: null, reason: err.message, exportedAt }, evaluation: tfjsEvaluation() };
  }
  try {
    started = performance.now();
    const candidate = await onnx.probabilities(test, indices);
    const onnxSeconds = (performance.now() - started) / 1000;
    const { passed, images, maxProbabilityDifference, argmaxDisagreements, ambiguousImages } = compareProbabilities(reference, candidate);
    const parity = { images, maxProbabilityDifference, argmaxDisagreements, ambiguousImages, tfjsSeconds, onnxSeconds };
    const record = { opset: OPSET, onnxRuntime: runtimeVersion, parity, exportedAt };
    if (!passed) {
      const reason = `ONNX Runtime differs from TF.js: max probability difference ${maxProbabilityDifference.toExponential(2)}, ${argmaxDisagreements} images given another digit`;
      return { record: { status: 'parity-failed', file: null, reason, ...record }, evaluation: tfjsEvaluation() };
    }
    return { onnx: bytes, record: { status: 'exported', file: ONNX_FILE, ...record }, evaluation: scoreProbabilities(candidate, test, indices) };
  } finally {
    await onnx.dispose();
  }
}

import { availableParallelism } from 'node:os';
import { loadMnist } from '../data/mnist.ts';
import { perClassAccuracy, predictProbabilities, scoreProbabilities } from '../ml/evaluate.ts';
import { loadModel } from '../ml/load-model.ts';
import { filesToArtifacts, type ModelFiles } from '../ml/model-files.ts';
import { OnnxModel, OnnxRuntimeUnavailableError } from '../ml/onnx/onnx-session.ts';
import { range } from '../ml/random.ts';
import type { LabelledImages } from '../data/labelled-images.ts';
import type { Evaluation } from '../schemas/evaluation.ts';
import type { EvaluateParams } from '../schemas/jobs.ts';
import type { InferenceEngineName } from '../schemas/inference-engine.ts';
import { DatasetStore } from '../store/dataset-store.ts';
import { ModelStore } from '../store/model-store.ts';
import type { StorePaths } from './finetune-job.ts';

/**
 * The use case of an evaluate job: a version's accuracy, per digit and in full, on MNIST test or a
 * stored dataset. Runs on the version's model.onnx (its parity with the TF.js files was proven when
 * it was written) with every core, else on TF.js.
 */
export async function runEvaluateJob(params: EvaluateParams, paths: StorePaths): Promise<Evaluation> {
  const files = await new ModelStore(paths.modelsDir).readModelFiles(params.version);
  const data = params.dataset === 'mnist' ? await loadMnist('test') : await new DatasetStore(paths.datasetsDir).load(params.dataset);
  const started = performance.now();
  const onOnnx = files.onnx && (await onnxProbabilities(files.onnx, data));
  const { probabilities, engine } = onOnnx || { probabilities: await tfjsProbabilities(files, data), engine: 'tfjs' as const };
  const seconds = (performance.now() - started) / 1000;
  const result = scoreProbabilities(probabilities, data);
  return {
    version: params.version,
    dataset: params.dataset,
    count: result.count,
    accuracy: result.accuracy,
    loss: result.loss,
    perClassAccuracy: perClassAccuracy(result.confusionMatrix),
    confusionMatrix: result.confusionMatrix,
    engine,
    seconds,
  };
}

async function onnxProbabilities(bytes: Uint8Array, data: LabelledImages): Promise<{ probabilities: Float32Array; engine: InferenceEngineName } | undefined> {
  let model: OnnxModel;
  try {
    model = await OnnxModel.load(bytes, { threads: availableParallelism() });
  } catch (err) {
    if (err instanceof OnnxRuntimeUnavailableError) return undefined; // this worker has no ONNX Runtime: TF.js it is
    throw err;
  }
  try {
    return { probabilities: await model.probabilities(data, range(data.count)), engine: 'onnxruntime' };
  } finally {
    await model.dispose();
  }
}

async function tfjsProbabilities(files: ModelFiles, data: LabelledImages): Promise<Float32Array> {
  const model = await loadModel(filesToArtifacts(files));
  try {
    return predictProbabilities(model, data);
  } finally {
    model.dispose();
  }
}

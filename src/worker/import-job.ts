import * as tf from '@tensorflow/tfjs-core';
import { loadMnist, spreadIndices } from '../data/mnist.ts';
import { exportForServing } from '../ml/onnx/export-for-serving.ts';
import { importLayersModel, type CostBudget } from '../ml/import-model.ts';
import { serializeModel } from '../ml/serialize.ts';
import { loadModel } from '../ml/load-model.ts';
import { filesToArtifacts } from '../ml/model-files.ts';
import type { ImportParams } from '../schemas/jobs.ts';
import type { TrainingOutcome } from './train-job.ts';

/**
 * The use case of an import job: the staged files become a model this service can serve (checked,
 * its cost estimated and bounded before it runs, adapted to 28×28×1 in and probabilities out),
 * scored on the MNIST test set, serialised as a version's files.
 */
export async function runImportJob(params: ImportParams, files: Map<string, Buffer>, budget: CostBudget, testLimit = 10_000): Promise<TrainingOutcome> {
  const started = Date.now();
  const { model, adapted, cost } = await importLayersModel(files, budget);
  try {
    const test = await loadMnist('test');
    const scored = spreadIndices(test.count, testLimit);
    const files = await serializeModel(model);
    // Exported from the version as it will be stored and served, read back: an adapted import wraps
    // or re-applies the uploaded layers, which the exporter would refuse as shared or nested.
    const stored = await loadModel(filesToArtifacts(files));
    const { onnx, record, evaluation: result } = await exportForServing(stored, test, scored).finally(() => stored.dispose());
    return {
      files: { ...files, ...(onnx && { onnx }) },
      onnx: record,
      history: [],
      architecture: 'imported',
      metrics: { testAccuracy: result.accuracy, testLoss: result.loss, confusionMatrix: result.confusionMatrix },
      dataset: { name: 'none (imported)', trainCount: 0, testCount: scored.length, sha256: test.sha256 },
      backend: tf.getBackend(),
      durationMs: Date.now() - started,
      details: { source: 'import', files: params.files, adapted, cost: { activations: cost.activations, macs: cost.macs } },
    };
  } finally {
    model.dispose();
  }
}

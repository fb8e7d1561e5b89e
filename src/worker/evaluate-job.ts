import { loadMnist } from '../data/mnist.ts';
import { evaluate, perClassAccuracy } from '../ml/evaluate.ts';
import { loadModel } from '../ml/load-model.ts';
import { filesToArtifacts } from '../ml/model-files.ts';
import type { Evaluation } from '../schemas/evaluation.ts';
import type { EvaluateParams } from '../schemas/jobs.ts';
import { DatasetStore } from '../store/dataset-store.ts';
import { ModelStore } from '../store/model-store.ts';
import type { StorePaths } from './finetune-job.ts';

/** The use case of an evaluate job: a version's accuracy, per digit and in full, on MNIST test or a stored dataset. */
export async function runEvaluateJob(params: EvaluateParams, paths: StorePaths): Promise<Evaluation> {
  const files = await new ModelStore(paths.modelsDir).readModelFiles(params.version);
  const data = params.dataset === 'mnist' ? await loadMnist('test') : await new DatasetStore(paths.datasetsDir).load(params.dataset);
  const model = await loadModel(filesToArtifacts(files));
  try {
    const result = evaluate(model, data);
    return {
      version: params.version,
      dataset: params.dataset,
      count: result.count,
      accuracy: result.accuracy,
      loss: result.loss,
      perClassAccuracy: perClassAccuracy(result.confusionMatrix),
      confusionMatrix: result.confusionMatrix,
    };
  } finally {
    model.dispose();
  }
}

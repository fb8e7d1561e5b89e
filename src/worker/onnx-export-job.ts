import { loadMnist, spreadIndices } from '../data/mnist.ts';
import { loadModel } from '../ml/load-model.ts';
import { filesToArtifacts } from '../ml/model-files.ts';
import { exportForServing } from '../ml/onnx/export-for-serving.ts';
import type { OnnxExport } from '../schemas/models.ts';
import { ModelStore } from '../store/model-store.ts';
import type { StorePaths } from './finetune-job.ts';

/**
 * The use case of the backfill, for one version written before versions had a model.onnx: export
 * it and prove the copy on the MNIST test images new versions are scored on. Runs in a sandboxed
 * child like a job; the worker writes what it gives back.
 */
export async function exportVersionToOnnx(version: number, paths: StorePaths, testLimit = 10_000): Promise<{ onnx?: Uint8Array; record: OnnxExport }> {
  const files = await new ModelStore(paths.modelsDir).readModelFiles(version);
  const [model, test] = await Promise.all([loadModel(filesToArtifacts(files)), loadMnist('test')]);
  try {
    const { onnx, record } = await exportForServing(model, test, spreadIndices(test.count, testLimit));
    return { ...(onnx && { onnx }), record };
  } finally {
    model.dispose();
  }
}

import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { loadMnist, spreadIndices } from '../data/mnist.ts';
import { createModel } from '../ml/architectures.ts';
import type { Checkpointer } from '../ml/checkpoint.ts';
import { train, type TrainCallbacks } from '../ml/train.ts';
import type { TrainJobData } from '../queue/job-data.ts';
import type { EpochStats } from '../schemas/jobs.ts';
import type { ModelMetadata, ModelMetrics } from '../schemas/models.ts';
import { serializeModel } from '../ml/serialize.ts';
import { DIGIT_PIXELS } from '../schemas/digit.ts';
import type { ModelFiles } from '../ml/model-files.ts';
import { exportForServing } from '../ml/onnx/export-for-serving.ts';

export interface TrainingOutcome {
  files: ModelFiles;
  history: EpochStats[];
  architecture: string;
  metrics: ModelMetrics;
  dataset: ModelMetadata['dataset'];
  lineage?: ModelMetadata['lineage'];
  /** A fine-tune on corrections: its promotion gate's decision. */
  promotion?: ModelMetadata['promotion'];
  /** Its ONNX copy for serving, or why it has none. */
  onnx: NonNullable<ModelMetadata['onnx']>;
  backend: string;
  durationMs: number;
  /** What the job learned about its input, kept with its params in the version's metadata (an import's adaptations and cost). */
  details?: Record<string, unknown>;
}

/**
 * The use case of a train job, told in order: load MNIST, build the architecture, train, evaluate
 * on the full test set, serialise. Runs wherever TensorFlow.js is initialised (a training process in
 * production, the test process in tests). With a checkpointer it saves its state every epoch and
 * resumes from a saved one.
 */
export async function runTrainJob(params: TrainJobData, callbacks: TrainCallbacks = {}, checkpoints?: Checkpointer, testLimit = 10_000): Promise<TrainingOutcome> {
  const started = Date.now();
  const [trainSet, testSet] = await Promise.all([loadMnist('train'), loadMnist('test')]);
  const count = Math.min(params.limit, trainSet.count);
  const examples = { images: trainSet.images.subarray(0, count * DIGIT_PIXELS), labels: trainSet.labels.subarray(0, count), count };

  const model = createModel(params.architecture, params);
  try {
    const resumeFrom = await checkpoints?.restore(model);
    const history = await train(
      model,
      examples,
      { ...params, schedule: { name: params.learningRateSchedule, rate: params.learningRate }, resumeFrom },
      withCheckpoints(callbacks, model, checkpoints),
    );
    const scored = spreadIndices(testSet.count, testLimit);
    const { onnx, record, evaluation: test } = await exportForServing(model, testSet, scored);
    return {
      files: { ...(await serializeModel(model)), ...(onnx && { onnx }) },
      onnx: record,
      history,
      architecture: params.architecture,
      metrics: { testAccuracy: test.accuracy, testLoss: test.loss, confusionMatrix: test.confusionMatrix },
      dataset: { name: 'mnist', trainCount: count, testCount: scored.length, sha256: trainSet.sha256 },
      backend: tf.getBackend(),
      durationMs: Date.now() - started,
    };
  } finally {
    model.dispose();
  }
}

/** The callbacks, plus saving a checkpoint whenever training offers one. */
export function withCheckpoints(callbacks: TrainCallbacks, model: LayersModel, checkpoints: Checkpointer | undefined): TrainCallbacks {
  if (!checkpoints) return callbacks;
  return {
    ...callbacks,
    onCheckpoint: async (position) => {
      await checkpoints.save(model, position);
      await callbacks.onCheckpoint?.(position);
    },
  };
}

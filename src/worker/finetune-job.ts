import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../ml/load-model.ts';
import { loadMnist, spreadIndices } from '../data/mnist.ts';
import { compileForTraining } from '../ml/architectures.ts';
import { evaluate } from '../ml/evaluate.ts';
import { concatExamples, rehearsalSample } from '../ml/examples.ts';
import { freezeLayers } from '../ml/freeze.ts';
import { splitIndices, train, type TrainCallbacks } from '../ml/train.ts';
import type { FinetuneJobData } from '../queue/job-data.ts';
import { DatasetStore } from '../store/dataset-store.ts';
import { filesToArtifacts } from '../ml/model-files.ts';
import { ModelStore } from '../store/model-store.ts';
import { serializeModel } from '../ml/serialize.ts';
import type { Checkpointer } from '../ml/checkpoint.ts';
import { withCheckpoints, type TrainingOutcome } from './train-job.ts';
import type { LabelledImages } from '../data/labelled-images.ts';
import { promotionGate } from '../ml/promotion-gate.ts';
import { createHash } from 'node:crypto';
import { exportForServing } from '../ml/onnx/export-for-serving.ts';

/** A fine-tune on corrections: the worker reads them from Redis and hands them over, with the gate's allowance. */
export interface FeedbackInput {
  data: LabelledImages;
  /** PROMOTION_MAX_MNIST_DROP */
  maxMnistDrop: number;
}

export interface StorePaths {
  modelsDir: string;
  datasetsDir: string;
}

/**
 * The use case of a fine-tune job: load the base version, freeze its feature layers, train on the
 * new dataset's training split mixed with MNIST (rehearsal, against forgetting), then measure both
 * the new data's held-out split and the MNIST test set.
 */
export async function runFinetuneJob(
  params: FinetuneJobData,
  paths: StorePaths,
  callbacks: TrainCallbacks = {},
  checkpoints?: Checkpointer,
  feedback?: FeedbackInput,
  testLimit = 10_000,
): Promise<TrainingOutcome> {
  const started = Date.now();
  const models = new ModelStore(paths.modelsDir);
  const [baseFiles, baseMeta, mnistTrain, mnistTest] = await Promise.all([
    models.readModelFiles(params.baseModel),
    models.readMetadata(params.baseModel),
    loadMnist('train'),
    loadMnist('test'),
  ]);
  const isMnist = params.dataset === 'mnist';
  if (params.dataset === 'feedback' && !feedback) throw new Error('a fine-tune on "feedback" needs the corrections, read by the worker');
  const fromStore = !isMnist && !feedback;
  const datasetInfo = fromStore ? await new DatasetStore(paths.datasetsDir).get(params.dataset) : undefined;
  const data = isMnist ? mnistTrain : feedback ? feedback.data : await new DatasetStore(paths.datasetsDir).load(params.dataset);

  const { train: trainIdx, validation } = splitIndices(data.count, params.validationSplit, params.seed);
  const rehearsal = isMnist ? new Uint32Array(0) : rehearsalSample(trainIdx.length, params.rehearsal, mnistTrain.count, params.seed);
  const mixed = concatExamples([
    { data, indices: trainIdx },
    { data: mnistTrain, indices: rehearsal },
  ]);

  const model = await loadModel(filesToArtifacts(baseFiles));
  try {
    freezeLayers(model, params.freeze);
    compileForTraining(model, params);
    // The gate compares with the base on the very same held-out corrections: scored now, while the
    // model still is the base (before a checkpoint or training changes it).
    const baseHeldOut = feedback && validation.length > 0 ? evaluate(model, data, validation).accuracy : undefined;
    const resumeFrom = await checkpoints?.restore(model);
    const history = await train(
      model,
      mixed,
      {
        epochs: params.epochs,
        batchSize: params.batchSize,
        schedule: { name: params.learningRateSchedule, rate: params.learningRate },
        validationSplit: 0,
        seed: params.seed,
        augment: params.augment,
        validation: { data, indices: validation },
        resumeFrom,
      },
      withCheckpoints(callbacks, model, checkpoints),
    );
    const scored = spreadIndices(mnistTest.count, testLimit);
    const { onnx, record, evaluation: test } = await exportForServing(model, mnistTest, scored);
    const heldOut = validation.length > 0 ? evaluate(model, data, validation) : undefined;
    const promotion =
      feedback && heldOut && baseHeldOut !== undefined
        ? promotionGate({ heldOutAccuracy: heldOut.accuracy, baseHeldOutAccuracy: baseHeldOut, testAccuracy: test.accuracy, baseTestAccuracy: baseMeta.metrics.testAccuracy }, feedback.maxMnistDrop)
        : undefined;
    return {
      files: { ...(await serializeModel(model)), ...(onnx && { onnx }) },
      onnx: record,
      history,
      architecture: baseMeta.architecture,
      metrics: {
        testAccuracy: test.accuracy,
        testLoss: test.loss,
        confusionMatrix: test.confusionMatrix,
        ...(heldOut && {
          heldOut: {
            dataset: params.dataset,
            count: heldOut.count,
            accuracy: heldOut.accuracy,
            ...(baseHeldOut !== undefined && { baseAccuracy: baseHeldOut }),
            loss: heldOut.loss,
            confusionMatrix: heldOut.confusionMatrix,
          },
        }),
      },
      dataset: {
        name: datasetInfo
          ? `${datasetInfo.name} (${datasetInfo.id}) + ${rehearsal.length} MNIST`
          : feedback
            ? `${data.count} corrections${params.since ? ` since version ${params.since}` : ''} + ${rehearsal.length} MNIST`
            : 'mnist',
        trainCount: mixed.count,
        testCount: scored.length,
        sha256: datasetInfo?.sha256 ?? (feedback ? createHash('sha256').update(data.images).update(data.labels).digest('hex') : mnistTrain.sha256),
      },
      ...(promotion && { promotion }),
      lineage: { baseVersion: params.baseModel, dataset: params.dataset },
      backend: tf.getBackend(),
      durationMs: Date.now() - started,
    };
  } finally {
    model.dispose();
  }
}


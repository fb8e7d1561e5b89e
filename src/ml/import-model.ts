import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { DIGIT_PIXELS, DIGIT_SHAPE, NUM_CLASSES } from '../schemas/digit.ts';
import { loadModel } from './load-model.ts';
import { estimateCost, type ModelCost } from './model-cost.ts';
import { checkModelUpload, ModelImportError } from './model-upload.ts';

export interface ImportedModel {
  model: tfl.LayersModel;
  /** What was done to make it take a 28×28×1 image and give 10 probabilities. */
  adapted: string[];
  /** What one image costs it, estimated from its layers' shapes. */
  cost: ModelCost;
}

/** The most one image may cost an imported model (IMPORT_MAX_ACTIVATIONS, IMPORT_MAX_MACS). */
export interface CostBudget {
  maxActivations: number;
  maxMacs: number;
}

function refuseOverBudget(cost: ModelCost, budget: CostBudget): void {
  const where = `most in layer ${cost.heaviest.layer} (${cost.heaviest.className})`;
  const n = (x: number) => x.toLocaleString('en');
  if (cost.activations > budget.maxActivations) {
    throw new ModelImportError(`the model would produce ${n(cost.activations)} values per image, ${where}; at most ${n(budget.maxActivations)} (IMPORT_MAX_ACTIVATIONS)`);
  }
  if (cost.macs > budget.maxMacs) throw new ModelImportError(`the model would take ${n(cost.macs)} multiply-accumulates per image, ${where}; at most ${n(budget.maxMacs)} (IMPORT_MAX_MACS)`);
}

/**
 * Turns uploaded files (a tfjs layers `model.json` and the weight files its manifest names, as
 * `tensorflowjs_converter` or `model.save()` write them) into a model this service can serve and
 * fine-tune: it must load, take [28,28,1] or [784] and give 10 outputs. A [784]-input model gets a
 * flatten in front; a model whose outputs are not probabilities (logits) gets a softmax at the end.
 */
export async function importLayersModel(files: Map<string, Buffer>, budget: CostBudget): Promise<ImportedModel> {
  const { json, specs, weightFiles } = checkModelUpload(files);
  const weights = Buffer.concat(weightFiles.map((name) => files.get(name)!));


  let model: tfl.LayersModel;
  try {
    model = await loadModel({
      modelTopology: json.modelTopology,
      weightSpecs: specs,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer,
    });
  } catch (err) {
    throw new ModelImportError(`the model does not load: ${(err as Error).message}`);
  }

  const adapted: string[] = [];
  let cost: ModelCost;
  try {
    // Before anything runs: a model of a few hundred bytes can ask for gigabytes (UpSampling2D 60×60).
    cost = estimateCost(model);
    refuseOverBudget(cost, budget);
    if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new ModelImportError('the model must have one input and one output');
    const input = model.inputs[0].shape.slice(1).join(',');
    const output = model.outputs[0].shape;
    if (output.length !== 2 || output[1] !== NUM_CLASSES) throw new ModelImportError(`the model outputs ${JSON.stringify(output)}; it must give 10 values (digits 0-9)`);
    if (input === String(DIGIT_PIXELS)) {
      model = withLayers(model, [tfl.layers.flatten({ inputShape: DIGIT_SHAPE })], []);
      adapted.push('flatten [28,28,1] → [784] added in front');
    } else if (input !== DIGIT_SHAPE.join(',')) throw new ModelImportError(`the model takes ${JSON.stringify(model.inputs[0].shape)}; it must take [null,28,28,1] or [null,784]`);

    const probe = tf.tidy(() => (model.predict(tf.randomUniform([4, ...DIGIT_SHAPE], 0, 1, 'float32', 7)) as tf.Tensor2D).arraySync());
    if (probe.flat().some((v) => !Number.isFinite(v))) throw new ModelImportError('the model predicts non-finite values');
    const probabilities = probe.every((row) => row.every((v) => v >= 0) && Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-3);
    if (!probabilities) {
      model = withLayers(model, [], [tfl.layers.activation({ activation: 'softmax', name: 'imported_softmax' })]);
      adapted.push('softmax added after the logits');
    }
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { model, adapted, cost };
}

/** The same layers with some before and after: flat for a Sequential (so freezing by layer still works), nested otherwise. */
function withLayers(model: tfl.LayersModel, before: tfl.layers.Layer[], after: tfl.layers.Layer[]): tfl.LayersModel {
  if (model instanceof tfl.Sequential) return tfl.sequential({ layers: [...before, ...model.layers, ...after] });
  const input = tfl.input({ shape: DIGIT_SHAPE });
  let x = before.reduce<tfl.SymbolicTensor>((t, l) => l.apply(t) as tfl.SymbolicTensor, input);
  x = model.apply(x) as tfl.SymbolicTensor;
  x = after.reduce<tfl.SymbolicTensor>((t, l) => l.apply(t) as tfl.SymbolicTensor, x);
  return tfl.model({ inputs: input, outputs: x });
}

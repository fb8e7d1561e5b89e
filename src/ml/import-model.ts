import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadModel } from './load-model.ts';
import { DIGIT_PIXELS, DIGIT_SHAPE, NUM_CLASSES } from '../schemas/digit.ts';
import { ServiceError } from '../errors.ts';

export class ModelImportError extends ServiceError {
  constructor(message: string) {
    super('invalid', message);
  }
}

/** Bytes per element of each weight dtype, or of its quantised storage. */
const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

function weightBytes(spec: tf.io.WeightsManifestEntry): number {
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const per = BYTES[dtype];
  if (!per) throw new ModelImportError(`weight ${spec.name} has unsupported dtype ${dtype}`);
  return per * spec.shape.reduce((a, b) => a * b, 1);
}

/** The manifest is user input: its shape is checked before any of it is used. */
function checkManifest(manifest: unknown[], jsonName: string): asserts manifest is tf.io.WeightsManifestConfig {
  for (const group of manifest) {
    const g = group as { paths?: unknown; weights?: unknown } | null;
    if (!g || typeof g !== 'object' || !Array.isArray(g.paths) || !g.paths.every((p) => typeof p === 'string') || !Array.isArray(g.weights)) {
      throw new ModelImportError(`${jsonName}: each weightsManifest entry needs a list of file paths and a list of weights`);
    }
    for (const w of g.weights as unknown[]) {
      const spec = w as { name?: unknown; dtype?: unknown; shape?: unknown } | null;
      if (!spec || typeof spec !== 'object' || typeof spec.name !== 'string' || typeof spec.dtype !== 'string' || !Array.isArray(spec.shape) || !spec.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        throw new ModelImportError(`${jsonName}: weight ${JSON.stringify(spec?.name ?? null)} needs a name, a dtype and a shape of whole numbers`);
      }
    }
  }
}

export interface ImportedModel {
  model: tfl.LayersModel;
  /** What was done to make it take a 28×28×1 image and give 10 probabilities. */
  adapted: string[];
}

/**
 * Turns uploaded files (a tfjs layers `model.json` and the weight files its manifest names, as
 * `tensorflowjs_converter` or `model.save()` write them) into a model this service can serve and
 * fine-tune: it must load, take [28,28,1] or [784] and give 10 outputs. A [784]-input model gets a
 * flatten in front; a model whose outputs are not probabilities (logits) gets a softmax at the end.
 */
export async function importLayersModel(files: Map<string, Buffer>): Promise<ImportedModel> {
  const jsonName = files.has('model.json') ? 'model.json' : [...files.keys()].find((n) => n.endsWith('.json'));
  if (!jsonName) throw new ModelImportError('no model.json among the uploaded files');
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(files.get(jsonName)!.toString('utf8')) as tf.io.ModelJSON;
  } catch (err) {
    throw new ModelImportError(`${jsonName} is not valid JSON: ${(err as Error).message}`);
  }
  if (!json || typeof json !== 'object' || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new ModelImportError(`${jsonName} is not a TensorFlow.js model (it needs modelTopology and weightsManifest)`);
  }
  if (json.format && json.format !== 'layers-model') {
    throw new ModelImportError(`${jsonName} is a ${json.format}; only layers models are supported (tensorflowjs_converter --output_format=tfjs_layers_model)`);
  }

  checkManifest(json.weightsManifest, jsonName);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Buffer[] = [];
  for (const group of json.weightsManifest) {
    const groupBytes = group.weights.reduce((n, w) => n + weightBytes(w), 0);
    const buffers = group.paths.map((path) => {
      const name = path.split('/').pop()!;
      const buf = files.get(name);
      if (!buf) throw new ModelImportError(`weight file ${name} named by ${jsonName} was not uploaded`);
      return buf;
    });
    const got = buffers.reduce((n, b) => n + b.length, 0);
    if (got !== groupBytes) throw new ModelImportError(`weight files ${group.paths.join(', ')} hold ${got} bytes; the manifest describes ${groupBytes}`);
    parts.push(...buffers);
    specs.push(...group.weights);
  }
  const weights = Buffer.concat(parts);

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
  try {
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
  return { model, adapted };
}

/** The same layers with some before and after: flat for a Sequential (so freezing by layer still works), nested otherwise. */
function withLayers(model: tfl.LayersModel, before: tfl.layers.Layer[], after: tfl.layers.Layer[]): tfl.LayersModel {
  if (model instanceof tfl.Sequential) return tfl.sequential({ layers: [...before, ...model.layers, ...after] });
  const input = tfl.input({ shape: [28, 28, 1] });
  let x = before.reduce<tfl.SymbolicTensor>((t, l) => l.apply(t) as tfl.SymbolicTensor, input);
  x = model.apply(x) as tfl.SymbolicTensor;
  x = after.reduce<tfl.SymbolicTensor>((t, l) => l.apply(t) as tfl.SymbolicTensor, x);
  return tfl.model({ inputs: input, outputs: x });
}

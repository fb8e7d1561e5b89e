import type { io } from '@tensorflow/tfjs-core';
import { ServiceError } from '../errors.ts';

/** An upload that is not a usable TensorFlow.js layers model, with what is wrong. */
export class ModelImportError extends ServiceError {
  constructor(message: string) {
    super('invalid', message);
  }
}

/** Bytes per element of each weight dtype, or of its quantised storage. */
const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

function weightBytes(spec: io.WeightsManifestEntry): number {
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const per = BYTES[dtype];
  if (!per) throw new ModelImportError(`weight ${spec.name} has unsupported dtype ${dtype}`);
  return per * spec.shape.reduce((a, b) => a * b, 1);
}

/** The manifest is user input: its shape is checked before any of it is used. */
function checkManifest(manifest: unknown[], jsonName: string): asserts manifest is io.WeightsManifestConfig {
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

/** An upload that is a whole layers model: its JSON, and its weights in manifest order. */
export interface ModelUpload {
  jsonName: string;
  json: io.ModelJSON;
  specs: io.WeightsManifestEntry[];
  /** The weight files' names, in the order their bytes follow each other. */
  weightFiles: string[];
}

/**
 * Checks an upload without running anything (so the API can refuse a bad one at once): a tfjs
 * layers `model.json` and exactly the weight files its manifest names, each of the size the
 * manifest describes. A file the manifest does not name is refused, not silently kept.
 */
export function checkModelUpload(files: Map<string, Buffer>): ModelUpload {
  const jsonName = files.has('model.json') ? 'model.json' : [...files.keys()].find((n) => n.endsWith('.json'));
  if (!jsonName) throw new ModelImportError('no model.json among the uploaded files');
  let json: io.ModelJSON;
  try {
    json = JSON.parse(files.get(jsonName)!.toString('utf8')) as io.ModelJSON;
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
  const specs: io.WeightsManifestEntry[] = [];
  const weightFiles: string[] = [];
  for (const group of json.weightsManifest) {
    const groupBytes = group.weights.reduce((n, w) => n + weightBytes(w), 0);
    const names = group.paths.map((path) => path.split('/').pop()!);
    const got = names.reduce((n, name) => {
      const buf = files.get(name);
      if (!buf) throw new ModelImportError(`weight file ${name} named by ${jsonName} was not uploaded`);
      return n + buf.length;
    }, 0);
    if (got !== groupBytes) throw new ModelImportError(`weight files ${group.paths.join(', ')} hold ${got} bytes; the manifest describes ${groupBytes}`);
    weightFiles.push(...names);
    specs.push(...group.weights);
  }
  const unnamed = [...files.keys()].filter((name) => name !== jsonName && !weightFiles.includes(name));
  if (unnamed.length > 0) throw new ModelImportError(`${unnamed.join(', ')}: not named by ${jsonName}'s weightsManifest; send only model.json and its weight files`);
  return { jsonName, json, specs, weightFiles };
}

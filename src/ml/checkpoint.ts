import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { TrainPosition } from './train.ts';

/**
 * A training checkpoint as one self-describing byte array: the model's weights, its optimizer's
 * state (Adam's moments and step count) and the position in the training. Restored into a model of
 * the same architecture, compiled the same way, training goes on exactly where it stopped.
 *
 * Layout: MAGIC, header length (uint32 LE), header JSON, padding to 4 bytes, then the tensors'
 * values (float32 or int32, little-endian) at the offsets the header names.
 */
const MAGIC = new TextEncoder().encode('mnist-checkpoint/1\n');

type Group = 'model' | 'optimizer';
interface TensorEntry {
  group: Group;
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  /** Byte offset from the start of the values. */
  offset: number;
}
interface Header {
  /** Says which training this is for (the caller's choice, e.g. the job's parameters); checked on restore. */
  tag: string;
  optimizer: string;
  position: TrainPosition;
  tensors: TensorEntry[];
}

export class CheckpointError extends Error {}

/** How a training use case saves and restores its state; the worker keeps it in a file per job. */
export interface Checkpointer {
  /** Loads the saved state into the compiled model and says where training stood; undefined = start afresh. */
  restore(model: LayersModel): Promise<TrainPosition | undefined>;
  save(model: LayersModel, position: TrainPosition): Promise<void>;
}

export async function encodeCheckpoint(model: LayersModel, position: TrainPosition, tag: string): Promise<Uint8Array> {
  const optimizerWeights = await model.optimizer.getWeights();
  const iterations = optimizerWeights[0]?.tensor; // a fresh scalar; the rest are the optimizer's own variables
  try {
    const named: { group: Group; name: string; tensor: tf.Tensor }[] = [
      ...model.getWeights().map((tensor, i) => ({ group: 'model' as const, name: model.weights[i].originalName, tensor })),
      ...optimizerWeights.map((w) => ({ group: 'optimizer' as const, name: w.name, tensor: w.tensor })),
    ];
    const values: Uint8Array[] = [];
    const tensors: TensorEntry[] = [];
    let offset = 0;
    for (const { group, name, tensor } of named) {
      if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32') throw new CheckpointError(`cannot checkpoint ${name}: dtype ${tensor.dtype}`);
      const data = tensor.dataSync() as Float32Array | Int32Array;
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      tensors.push({ group, name, shape: tensor.shape, dtype: tensor.dtype, offset });
      values.push(bytes);
      offset += bytes.byteLength;
    }
    const header: Header = { tag, optimizer: model.optimizer.getClassName(), position, tensors };
    const json = new TextEncoder().encode(JSON.stringify(header));
    const start = align4(MAGIC.length + 4 + json.length);
    const out = new Uint8Array(start + offset);
    out.set(MAGIC, 0);
    new DataView(out.buffer).setUint32(MAGIC.length, json.length, true);
    out.set(json, MAGIC.length + 4);
    let at = start;
    for (const bytes of values) {
      out.set(bytes, at);
      at += bytes.byteLength;
    }
    return out;
  } finally {
    iterations?.dispose();
  }
}

/**
 * Loads a checkpoint's weights and optimizer state into `model` (built and compiled as when it was
 * taken) and returns where training stood. Throws CheckpointError when it does not fit.
 */
export async function restoreCheckpoint(model: LayersModel, bytes: Uint8Array, tag: string): Promise<TrainPosition> {
  const { header, values } = decode(bytes);
  if (header.tag !== tag) throw new CheckpointError('the checkpoint belongs to another training');
  if (header.optimizer !== model.optimizer.getClassName()) throw new CheckpointError(`the checkpoint is of a ${header.optimizer} optimizer, the model has ${model.optimizer.getClassName()}`);
  const modelEntries = header.tensors.filter((t) => t.group === 'model');
  const optimizerEntries = header.tensors.filter((t) => t.group === 'optimizer');
  if (header.tensors.some((t, i) => t.group !== (i < modelEntries.length ? 'model' : 'optimizer'))) throw new CheckpointError('checkpoint tensors are out of order');
  const expected = model.weights;
  if (modelEntries.length !== expected.length || modelEntries.some((e, i) => e.shape.join() !== expected[i].shape.join())) {
    throw new CheckpointError('the checkpoint does not fit the model: its weights differ in number or shape');
  }
  const toTensor = (e: TensorEntry) => {
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (e.offset % 4 !== 0 || e.offset + size * 4 > values.byteLength) throw new CheckpointError(`checkpoint tensor ${e.name} lies outside the file`);
    const copy = values.slice(e.offset, e.offset + size * 4).buffer;
    return tf.tensor(e.dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy), e.shape, e.dtype);
  };
  // Every tensor is read (and checked) before any is set, so a bad file leaves the model as it was.
  const made: tf.Tensor[] = [];
  try {
    for (const e of header.tensors) made.push(toTensor(e));
    model.setWeights(made.slice(0, modelEntries.length));
    const state = optimizerEntries.map((e, i) => ({ name: e.name, tensor: made[modelEntries.length + i] }));
    if (state.length > 0) await model.optimizer.setWeights(state); // its variables keep the data past this dispose
  } finally {
    tf.dispose(made);
  }
  return header.position;
}

function decode(bytes: Uint8Array): { header: Header; values: Uint8Array } {
  if (bytes.length < MAGIC.length + 4 || MAGIC.some((b, i) => bytes[i] !== b)) throw new CheckpointError('not a checkpoint file');
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(MAGIC.length, true);
  if (MAGIC.length + 4 + length > bytes.length) throw new CheckpointError('checkpoint file is truncated');
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + length))) as Header;
  } catch {
    throw new CheckpointError('checkpoint header is not JSON');
  }
  if (!header || !Array.isArray(header.tensors) || typeof header.position !== 'object') throw new CheckpointError('checkpoint header is incomplete');
  return { header, values: bytes.subarray(align4(MAGIC.length + 4 + length)) };
}

const align4 = (n: number) => Math.ceil(n / 4) * 4;

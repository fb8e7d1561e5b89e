import { ProtoWriter } from './protobuf.ts';

/**
 * An ONNX graph under construction, and its encoding as a ModelProto (field numbers from onnx.proto).
 * Only what the exporter writes: float32 and int64 tensors, one input, one output.
 */

/** The opset the exporter targets: AffineGrid and GridSample's 'linear' mode arrived in 20. */
export const OPSET = 20;
/** The IR version that goes with opset 20. */
const IR_VERSION = 9;

const DATA_TYPE = { float32: 1, int64: 7 } as const;
const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, ints: 7 } as const;

export type Attribute = number | string | number[] | { float: number };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, Attribute>;
}

interface Initializer {
  name: string;
  dims: number[];
  data: Float32Array | BigInt64Array;
}

/** A tensor's declared shape: a number per fixed axis, a name for a free one (the batch). */
export type DeclaredShape = (number | string)[];

export class OnnxGraph {
  readonly nodes: OnnxNode[] = [];
  private readonly initializers: Initializer[] = [];
  private readonly used = new Set<string>();

  /** A name not used before in this graph, from `base`. */
  name(base: string): string {
    const clean = base.replace(/[^\w./-]/g, '_');
    let name = clean;
    for (let i = 1; this.used.has(name); i++) name = `${clean}_${i}`;
    this.used.add(name);
    return name;
  }

  /** Adds a node with one output named after `base`; returns that output's name. */
  add(op: string, inputs: string[], base: string, attributes?: Record<string, Attribute>): string {
    const output = this.name(base);
    this.nodes.push({ op, inputs, outputs: [output], attributes });
    return output;
  }

  floats(base: string, dims: number[], data: Float32Array): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`${base}: ${data.length} values for shape [${dims.join(', ')}]`);
    const name = this.name(base);
    this.initializers.push({ name, dims, data });
    return name;
  }

  int64s(base: string, values: number[]): string {
    const name = this.name(base);
    this.initializers.push({ name, dims: [values.length], data: BigInt64Array.from(values, BigInt) });
    return name;
  }

  /** The graph as an ONNX ModelProto, ready to write to `model.onnx`. */
  encode(input: { name: string; shape: DeclaredShape }, output: { name: string; shape: DeclaredShape }, producer: string): Uint8Array {
    const graph = new ProtoWriter();
    for (const node of this.nodes) graph.message(1, encodeNode(node));
    graph.string(2, 'main');
    for (const init of this.initializers) graph.message(5, encodeTensor(init));
    graph.message(11, encodeValueInfo(input.name, input.shape));
    graph.message(12, encodeValueInfo(output.name, output.shape));
    return new ProtoWriter()
      .int(1, IR_VERSION)
      .string(2, producer)
      .message(7, graph)
      .message(8, new ProtoWriter().string(1, '').int(2, OPSET))
      .finish();
  }
}

function encodeNode(node: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const input of node.inputs) w.string(1, input);
  for (const output of node.outputs) w.string(2, output);
  w.string(3, node.outputs[0]);
  w.string(4, node.op);
  for (const [name, value] of Object.entries(node.attributes ?? {})) w.message(5, encodeAttribute(name, value));
  return w;
}

function encodeAttribute(name: string, value: Attribute): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: ${value} is not an integer; write { float: ${value} }`);
    return w.int(3, value).int(20, ATTRIBUTE_TYPE.int);
  }
  if (typeof value === 'string') return w.string(4, value).int(20, ATTRIBUTE_TYPE.string);
  if (Array.isArray(value)) {
    for (const v of value) w.int(8, v);
    return w.int(20, ATTRIBUTE_TYPE.ints);
  }
  return w.float(2, value.float).int(20, ATTRIBUTE_TYPE.float);
}

function encodeTensor({ name, dims, data }: Initializer): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of dims) w.int(1, d);
  w.int(2, data instanceof Float32Array ? DATA_TYPE.float32 : DATA_TYPE.int64);
  w.string(8, name);
  // raw_data is little-endian, as typed arrays are on every platform Node runs on here.
  w.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return w;
}

function encodeValueInfo(name: string, shape: DeclaredShape): ProtoWriter {
  const dims = new ProtoWriter();
  for (const d of shape) dims.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  const tensorType = new ProtoWriter().int(1, DATA_TYPE.float32).message(2, dims);
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}

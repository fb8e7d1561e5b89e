import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { OnnxGraph, type Attribute } from './onnx-graph.ts';

/**
 * TF.js layers model → ONNX, for serving on ONNX Runtime. The TF.js files stay the canonical
 * artefact; this is a derived copy, and the caller proves it computes the same (see onnx-parity.ts).
 *
 * Layout: TF.js is channels-last (NHWC), ONNX's Conv and pooling are channels-first. The graph
 * transposes the input once, keeps every 4-D tensor NCHW, and transposes back just before a Flatten,
 * so dense weights apply to the same element order as in TF.js.
 */

/** A model (or one of its layers) that has no ONNX translation here; served by TF.js instead. */
export class OnnxUnsupportedError extends Error {
  override readonly name = 'OnnxUnsupportedError';
}

export const ONNX_INPUT = 'image';
export const ONNX_OUTPUT = 'probabilities';

type Layout = 'nchw' | 'flat';
interface Value {
  name: string;
  layout: Layout;
}

// tfjs-layers keeps these internals public in JS but not in its types.
interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  weights: { originalName: string; read(): { dataSync(): ArrayLike<number> | Uint8Array; shape: number[] } }[];
  inboundNodes: { inputTensors: SymbolicTensor[]; outputTensors: SymbolicTensor[] }[];
}

/** Weights by their Keras name (kernel, bias, gamma, …) as float32 arrays with their shapes. */
function weightsOf(layer: LayerLike): Map<string, { data: Float32Array; shape: number[] }> {
  const out = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const w of layer.weights) {
    const key = /([a-z_]+?)(_\d+)?$/.exec(w.originalName.split('/').pop()!)![1];
    const tensor = w.read();
    out.set(key, { data: Float32Array.from(tensor.dataSync() as ArrayLike<number>), shape: tensor.shape });
  }
  return out;
}

/** TF's 'same' padding: the total split with the extra pixel at the end; 'valid': none. */
export function tfPads(padding: string, size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  if (padding === 'valid') return [0, 0];
  if (padding !== 'same') throw new OnnxUnsupportedError(`padding '${padding}'`);
  const effective = (kernel - 1) * dilation + 1;
  const total = Math.max((Math.ceil(size / stride) - 1) * stride + effective - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [v[0] as number, (v[1] ?? v[0]) as number] : [v as number, v as number]);

/** The output of `activation` applied to `x` (Keras names). */
function activation(graph: OnnxGraph, x: Value, name: unknown, base: string): Value {
  const softmaxAxis = x.layout === 'nchw' ? 1 : -1; // Keras applies softmax over the last (channel) axis
  const simple: Record<string, [string, Record<string, Attribute>?]> = {
    relu: ['Relu'],
    sigmoid: ['Sigmoid'],
    tanh: ['Tanh'],
    elu: ['Elu'],
    selu: ['Selu'],
    softplus: ['Softplus'],
    softsign: ['Softsign'],
    hardsigmoid: ['HardSigmoid', { alpha: { float: 0.2 }, beta: { float: 0.5 } }],
    softmax: ['Softmax', { axis: softmaxAxis }],
  };
  const key = String(name ?? 'linear').toLowerCase().replace(/_/g, '');
  if (key === 'linear') return x;
  if (key === 'relu6') return { name: graph.add('Clip', [x.name, graph.floats(`${base}/min`, [], Float32Array.of(0)), graph.floats(`${base}/max`, [], Float32Array.of(6))], base), layout: x.layout };
  const op = simple[key];
  if (!op) throw new OnnxUnsupportedError(`activation '${String(name)}'`);
  return { name: graph.add(op[0], [x.name], base, op[1]), layout: x.layout };
}

/** Per-channel scale and shift of a batch-normalisation layer at inference: y = x·scale + shift. */
function batchNormAffine(layer: LayerLike): { scale: Float32Array; shift: Float32Array } {
  const config = layer.getConfig();
  const axis = config.axis as number | number[];
  if (!(axis === -1 || axis === 3 || (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3)))) {
    throw new OnnxUnsupportedError(`BatchNormalization over axis ${JSON.stringify(axis)}`);
  }
  const w = weightsOf(layer);
  const mean = w.get('moving_mean')!.data;
  const variance = w.get('moving_variance')!.data;
  const gamma = w.get('gamma')?.data;
  const beta = w.get('beta')?.data;
  const epsilon = config.epsilon as number;
  const scale = new Float32Array(mean.length);
  const shift = new Float32Array(mean.length);
  for (let c = 0; c < mean.length; c++) {
    // In float64, rounded once: closer to TF.js's (x − mean)·γ/√(var + ε) + β than float32 steps.
    scale[c] = (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + epsilon);
    shift[c] = (beta ? beta[c] : 0) - mean[c] * scale[c];
  }
  return { scale, shift };
}

/**
 * Exports a single-input, single-output TF.js layers model. Throws OnnxUnsupportedError naming the
 * first layer (or setting) it has no translation for.
 */
export function exportOnnx(model: LayersModel, producer = 'mnist-service'): Uint8Array {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new OnnxUnsupportedError(`${model.inputs.length} inputs and ${model.outputs.length} outputs (one of each is supported)`);
  const graph = new OnnxGraph();
  // Both names reserved before any layer's: a layer named 'probabilities' would otherwise give two
  // nodes that output 'probabilities', which ONNX Runtime rejects.
  graph.name(ONNX_INPUT);
  graph.name(ONNX_OUTPUT);
  const values = new Map<number, Value>();
  const inputShape = model.inputs[0].shape;
  if (inputShape.length !== 4) throw new OnnxUnsupportedError(`input shape ${JSON.stringify(inputShape)} (images [n, H, W, C] are supported)`);
  values.set(model.inputs[0].id, { name: graph.add('Transpose', [ONNX_INPUT], 'input_nchw', { perm: [0, 3, 1, 2] }), layout: 'nchw' });

  const layers = model.layers as unknown as LayerLike[];
  // How many layers read each tensor: a convolution folds the batch norm after it only when nothing else reads its output.
  const readers = new Map<number, LayerLike[]>();
  for (const layer of layers) for (const node of layer.inboundNodes) for (const t of node.inputTensors) readers.set(t.id, [...(readers.get(t.id) ?? []), layer]);
  for (const t of model.outputs) readers.set(t.id, [...(readers.get(t.id) ?? []), { name: 'output' } as LayerLike]);
  const folded = new Set<LayerLike>();

  for (const layer of layers) {
    const kind = layer.getClassName();
    if (kind === 'InputLayer') continue;
    if (layer.inboundNodes.length !== 1) throw new OnnxUnsupportedError(`layer ${layer.name} (${kind}) is used ${layer.inboundNodes.length} times`);
    const [node] = layer.inboundNodes;
    const inputs = node.inputTensors.map((t) => {
      const v = values.get(t.id);
      if (!v) throw new OnnxUnsupportedError(`layer ${layer.name} (${kind}) reads a tensor from outside the model`);
      return v;
    });
    const output = node.outputTensors[0];
    if (node.outputTensors.length !== 1) throw new OnnxUnsupportedError(`layer ${layer.name} (${kind}) has ${node.outputTensors.length} outputs`);
    const next = readers.get(output.id);
    const foldable = next?.length === 1 && next[0].getClassName?.() === 'BatchNormalization' ? next[0] : undefined;
    const result = convertLayer(graph, layer, kind, inputs, node.inputTensors.map((t) => t.shape), foldable, folded);
    values.set(output.id, result);
  }

  const out = values.get(model.outputs[0].id)!;
  const outShape = model.outputs[0].shape;
  if (out.layout !== 'flat' || outShape.length !== 2) throw new OnnxUnsupportedError(`output shape ${JSON.stringify(outShape)} (a [n, classes] output is supported)`);
  graph.nodes.push({ op: 'Identity', inputs: [out.name], outputs: [ONNX_OUTPUT] });
  return graph.encode(
    { name: ONNX_INPUT, shape: ['batch', ...(inputShape.slice(1) as number[])] },
    { name: ONNX_OUTPUT, shape: ['batch', outShape[1] as number] },
    producer,
  );
}

function convertLayer(
  graph: OnnxGraph,
  layer: LayerLike,
  kind: string,
  inputs: Value[],
  inputShapes: (number | null)[][],
  nextBatchNorm: LayerLike | undefined,
  folded: Set<LayerLike>,
): Value {
  const config = layer.getConfig();
  const [x] = inputs;
  const base = layer.name;
  if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') throw new OnnxUnsupportedError(`layer ${base} (${kind}) is ${String(config.dataFormat)}`);
  const needs = (layout: Layout) => {
    if (x.layout !== layout) throw new OnnxUnsupportedError(`layer ${base} (${kind}) on a ${x.layout === 'nchw' ? '4-D' : '2-D'} input`);
  };
  switch (kind) {
    case 'Conv2D': {
      needs('nchw');
      const w = weightsOf(layer);
      const kernel = w.get('kernel')!;
      const [kh, kw, cin, cout] = kernel.shape;
      const [sh, sw] = pair(config.strides);
      const [dh, dw] = pair(config.dilationRate ?? 1);
      const [, height, width] = inputShapes[0] as number[];
      if ((config.groups ?? 1) !== 1) throw new OnnxUnsupportedError(`layer ${base} (Conv2D) has groups`);
      const [top, bottom] = tfPads(config.padding as string, height, kh, sh, dh);
      const [left, right] = tfPads(config.padding as string, width, kw, sw, dw);
      // HWIO → OIHW.
      const weights = new Float32Array(kernel.data.length);
      for (let o = 0; o < cout; o++) for (let i = 0; i < cin; i++) for (let r = 0; r < kh; r++) for (let c = 0; c < kw; c++) {
        weights[((o * cin + i) * kh + r) * kw + c] = kernel.data[((r * kw + c) * cin + i) * cout + o];
      }
      const bias = w.get('bias')?.data ?? new Float32Array(cout);
      const foldBatchNorm = nextBatchNorm && String(config.activation ?? 'linear') === 'linear';
      if (foldBatchNorm) {
        // Batch norm after a convolution, folded into its filters: W·scale, b·scale + shift.
        const { scale, shift } = batchNormAffine(nextBatchNorm);
        const per = cin * kh * kw;
        for (let o = 0; o < cout; o++) {
          for (let k = 0; k < per; k++) weights[o * per + k] *= scale[o];
          bias[o] = bias[o] * scale[o] + shift[o];
        }
        folded.add(nextBatchNorm);
      }
      const conv = graph.add('Conv', [x.name, graph.floats(`${base}/kernel`, [cout, cin, kh, kw], weights), graph.floats(`${base}/bias`, [cout], bias)], base, {
        kernel_shape: [kh, kw],
        strides: [sh, sw],
        dilations: [dh, dw],
        pads: [top, left, bottom, right],
      });
      return activation(graph, { name: conv, layout: 'nchw' }, config.activation, `${base}/activation`);
    }
    case 'BatchNormalization': {
      if (folded.has(layer)) return x; // its scale and shift are in the convolution before it
      const { scale, shift } = batchNormAffine(layer);
      const dims = x.layout === 'nchw' ? [1, scale.length, 1, 1] : [scale.length];
      const scaled = graph.add('Mul', [x.name, graph.floats(`${base}/scale`, dims, scale)], `${base}/mul`);
      return { name: graph.add('Add', [scaled, graph.floats(`${base}/shift`, dims, shift)], base), layout: x.layout };
    }
    case 'Dense': {
      needs('flat');
      const w = weightsOf(layer);
      const kernel = w.get('kernel')!;
      const [, units] = kernel.shape;
      const bias = w.get('bias')?.data ?? new Float32Array(units);
      const gemm = graph.add('Gemm', [x.name, graph.floats(`${base}/kernel`, kernel.shape, kernel.data), graph.floats(`${base}/bias`, [units], bias)], base);
      return activation(graph, { name: gemm, layout: 'flat' }, config.activation, `${base}/activation`);
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      needs('nchw');
      const [ph, pw] = pair(config.poolSize);
      const [sh, sw] = pair(config.strides ?? config.poolSize);
      const [, height, width] = inputShapes[0] as number[];
      const [top, bottom] = tfPads(config.padding as string, height, ph, sh);
      const [left, right] = tfPads(config.padding as string, width, pw, sw);
      // TF's average pooling counts only the pixels inside the image: ONNX's count_include_pad = 0, its default.
      const op = kind === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool';
      return { name: graph.add(op, [x.name], base, { kernel_shape: [ph, pw], strides: [sh, sw], pads: [top, left, bottom, right] }), layout: 'nchw' };
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D': {
      needs('nchw');
      if (config.keepDims) throw new OnnxUnsupportedError(`layer ${base} (${kind}) keeps its dims`);
      const pooled = graph.add(kind === 'GlobalMaxPooling2D' ? 'GlobalMaxPool' : 'GlobalAveragePool', [x.name], `${base}/pool`);
      return { name: graph.add('Flatten', [pooled], base, { axis: 1 }), layout: 'flat' };
    }
    case 'Flatten': {
      if (x.layout === 'flat') return x;
      // Back to NHWC first: the dense layer after it was trained on TF.js's element order.
      const nhwc = graph.add('Transpose', [x.name], `${base}/nhwc`, { perm: [0, 2, 3, 1] });
      return { name: graph.add('Flatten', [nhwc], base, { axis: 1 }), layout: 'flat' };
    }
    case 'Activation':
      return activation(graph, x, config.activation, base);
    case 'ReLU': {
      if (config.maxValue != null || (config.negativeSlope ?? 0) !== 0 || (config.threshold ?? 0) !== 0) throw new OnnxUnsupportedError(`layer ${base} (ReLU) with a cap, slope or threshold`);
      return { name: graph.add('Relu', [x.name], base), layout: x.layout };
    }
    case 'Softmax': {
      // TF.js's Softmax layer defaults to axis 1 (not Keras's −1), which is the last axis of a 2-D
      // input: accept any spelling of the last (channel) axis, −1, rank − 1 or [that].
      const rank = inputShapes[0].length;
      const raw = config.axis ?? -1;
      const axis = Array.isArray(raw) && raw.length === 1 ? (raw[0] as number) : raw;
      if (axis !== -1 && axis !== rank - 1) throw new OnnxUnsupportedError(`layer ${base} (Softmax) over axis ${JSON.stringify(raw)}`);
      return activation(graph, x, 'softmax', base);
    }
    case 'Dropout':
    case 'SpatialDropout2D':
    case 'GaussianNoise':
    case 'GaussianDropout':
    case 'AlphaDropout':
      return x; // identities at inference
    case 'Add': {
      if (inputs.some((v) => v.layout !== x.layout)) throw new OnnxUnsupportedError(`layer ${base} (Add) of 2-D and 4-D tensors`);
      return { name: graph.add(inputs.length === 2 ? 'Add' : 'Sum', inputs.map((v) => v.name), base), layout: x.layout };
    }
    case 'Concatenate': {
      const axis = (config.axis ?? -1) as number;
      if (inputs.some((v) => v.layout !== x.layout) || (axis !== -1 && axis !== (x.layout === 'nchw' ? 3 : 1))) throw new OnnxUnsupportedError(`layer ${base} (Concatenate) over axis ${axis}`);
      return { name: graph.add('Concat', inputs.map((v) => v.name), base, { axis: 1 }), layout: x.layout };
    }
    case 'SpatialTransformer':
      return spatialTransformer(graph, base, inputs, config.outputSize as [number, number] | null);
    default:
      throw new OnnxUnsupportedError(`layer ${base} (${kind})`);
  }
}

/**
 * The `stn` sampler: the layer computes PyTorch's grid_sample(x, affine_grid(θ, size,
 * align_corners=False), 'bilinear', 'zeros', align_corners=False), which is ONNX's AffineGrid and
 * GridSample with their defaults.
 */
function spatialTransformer(graph: OnnxGraph, base: string, [images, theta]: Value[], outputSize: [number, number] | null): Value {
  if (images.layout !== 'nchw' || theta?.layout !== 'flat') throw new OnnxUnsupportedError(`layer ${base} (SpatialTransformer) needs [images, theta]`);
  const matrix = graph.add('Reshape', [theta.name, graph.int64s(`${base}/theta_shape`, [-1, 2, 3])], `${base}/theta`);
  let size = graph.add('Shape', [images.name], `${base}/size`);
  if (outputSize) {
    const batchAndChannels = graph.add('Slice', [size, graph.int64s(`${base}/start`, [0]), graph.int64s(`${base}/end`, [2])], `${base}/n_c`);
    size = graph.add('Concat', [batchAndChannels, graph.int64s(`${base}/out_hw`, outputSize)], `${base}/out_size`, { axis: 0 });
  }
  const grid = graph.add('AffineGrid', [matrix, size], `${base}/grid`, { align_corners: 0 });
  return { name: graph.add('GridSample', [images.name, grid], base, { mode: 'linear', padding_mode: 'zeros', align_corners: 0 }), layout: 'nchw' };
}

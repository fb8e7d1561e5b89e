import type { LayersModel } from '@tensorflow/tfjs-layers';

/** What one image costs a model, estimated from its layers' shapes without running it. */
export interface ModelCost {
  /** Values all layers produce for one image, summed: the memory an inference needs, in floats. */
  activations: number;
  /** Multiply-accumulates of the layers that do them (convolutions, dense), about the rest's outputs. */
  macs: number;
  /** The layer that costs most (by activations, or by MACs when it has more of them). */
  heaviest: { layer: string; className: string; activations: number; macs: number };
}

type Shape = (number | null)[];

const perImage = (shape: Shape): number => shape.slice(1).reduce<number>((n, d) => n * (d ?? 1), 1);

function shapesOf(shape: Shape | Shape[]): Shape[] {
  return Array.isArray(shape[0]) || shape.length === 0 ? (shape as Shape[]) : [shape as Shape];
}

/** A layer's multiply-accumulates per image, from its config and its input and output shapes. */
function layerMacs(className: string, config: Record<string, unknown>, input: Shape, output: Shape): number {
  const out = perImage(output);
  const kernel = (config.kernelSize as number[] | undefined) ?? [1, 1];
  const window = kernel.reduce((n, k) => n * k, 1);
  const inChannels = input.at(-1) ?? 1;
  switch (className) {
    case 'Conv1D':
    case 'Conv2D':
    case 'Conv3D':
      return out * window * inChannels;
    case 'Conv2DTranspose':
      return perImage(input) * window * ((config.filters as number | undefined) ?? 1);
    case 'DepthwiseConv2D':
      return out * window;
    case 'SeparableConv2D':
      return perImage(input) * window + out * inChannels;
    case 'Dense':
      return out * inChannels;
    default:
      return out; // elementwise, pooling, resampling: about one operation per output value
  }
}

/**
 * Walks the model's layers once. Shapes come from the loaded topology, so nothing is allocated but
 * the weights: a model can be refused before its first inference asks for gigabytes.
 */
export function estimateCost(model: LayersModel): ModelCost {
  let activations = 0;
  let macs = 0;
  let heaviest: ModelCost['heaviest'] = { layer: '', className: '', activations: 0, macs: 0 };
  for (const layer of model.layers) {
    const outputs = shapesOf(layer.outputShape as Shape | Shape[]);
    const inputs = shapesOf((layer.inboundNodes[0]?.inputShapes ?? []) as Shape | Shape[]);
    const values = outputs.reduce((n, s) => n + perImage(s), 0);
    const ops = layerMacs(layer.getClassName(), layer.getConfig() as Record<string, unknown>, inputs[0] ?? [], outputs[0] ?? []);
    activations += values;
    macs += ops;
    if (values + ops > heaviest.activations + heaviest.macs) heaviest = { layer: layer.name, className: layer.getClassName(), activations: values, macs: ops };
  }
  return { activations, macs, heaviest };
}

import type { LayersModel } from '@tensorflow/tfjs-layers';

export type FreezeSpec = 'features' | 'none' | number;

/** Layers that may sit between the last feature layer and the output without being features. */
const HEAD_LAYERS = new Set(['Dense', 'Activation', 'Softmax', 'Dropout', 'ReLU']);

/**
 * The dense head: the run of dense (and activation, dropout) layers that ends at the model's output,
 * found by walking back from it. For `cnn` that is its last dense layer, for `lenet5` its three, for
 * `stn` and `resnet` the one after flatten / global pooling — the `stn` localisation network's dense
 * layers sit before the sampler, so they are features.
 */
export function headLayers(model: LayersModel): Set<string> {
  const head = new Set<string>();
  // `outputs`, not `outputLayers`: a Sequential model loaded from files has no outputLayers yet.
  let layer = model.outputs.length === 1 ? model.outputs[0].sourceLayer : undefined;
  while (layer && HEAD_LAYERS.has(layer.getClassName())) {
    head.add(layer.name);
    const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
    layer = inbound.length === 1 ? inbound[0] : undefined;
  }
  return head;
}

/**
 * Transfer learning: layers that keep their weights while the rest are fine-tuned. "features" is
 * every layer but the dense head (see headLayers); a number freezes that many of the first layers.
 * Call before compile(). Returns how many layers were frozen.
 */
export function freezeLayers(model: LayersModel, freeze: FreezeSpec): number {
  const layers = model.layers;
  let frozen: (i: number) => boolean;
  if (freeze === 'none') frozen = () => false;
  else if (freeze === 'features') {
    const head = headLayers(model);
    if (!layers.some((l) => head.has(l.name) && l.countParams() > 0)) throw new Error('freeze "features": the model has no dense head to fine-tune');
    frozen = (i) => !head.has(layers[i].name);
  } else {
    if (freeze > layers.length) throw new Error(`freeze ${freeze}: the model has only ${layers.length} layers`);
    frozen = (i) => i < freeze;
  }
  if (!layers.some((l, i) => !frozen(i) && l.countParams() > 0)) throw new Error(`freezing ${layers.filter((_, i) => frozen(i)).length} of ${layers.length} layers leaves nothing to train`);
  let count = 0;
  layers.forEach((layer, i) => {
    layer.trainable = !frozen(i);
    if (frozen(i)) count++;
  });
  frozenBatchNormInInferenceMode(model);
  return count;
}

/**
 * tfjs-layers' batch normalisation updates its moving mean and variance on every training call,
 * even when the layer is not trainable, so a frozen feature extractor would drift to the new data's
 * statistics. As Keras does since 2.1.3, a non-trainable batch-norm layer runs in inference mode:
 * it normalises by its moving statistics and leaves them as they are. Applies to the layers' current
 * and future `trainable` setting; idempotent.
 */
export function frozenBatchNormInInferenceMode(model: LayersModel): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const patched = layer as typeof layer & { frozenAware?: true };
    if (patched.frozenAware) continue;
    const call = layer.call.bind(layer);
    layer.call = (inputs, kwargs) => call(inputs, layer.trainable ? kwargs : { ...kwargs, training: false });
    patched.frozenAware = true;
  }
}

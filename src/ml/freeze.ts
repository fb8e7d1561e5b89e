import type { LayersModel } from '@tensorflow/tfjs-layers';

export type FreezeSpec = 'features' | 'none' | number;

/**
 * Transfer learning: layers that keep their weights while the rest are fine-tuned. "features" is
 * every layer before the first dense one (the convolutional feature extractor). Call before
 * compile(). Returns how many layers were frozen.
 */
export function freezeLayers(model: LayersModel, freeze: FreezeSpec): number {
  const layers = model.layers;
  let count: number;
  if (freeze === 'none') count = 0;
  else if (freeze === 'features') {
    count = layers.findIndex((l) => l.getClassName() === 'Dense');
    if (count < 0) throw new Error('freeze "features": the model has no dense layer to fine-tune');
  } else count = freeze;
  const trainableAfter = layers.slice(count).some((l) => l.countParams() > 0);
  if (count > layers.length || !trainableAfter) throw new Error(`freezing ${count} of ${layers.length} layers leaves nothing to train`);
  layers.forEach((layer, i) => {
    layer.trainable = i >= count;
  });
  return count;
}

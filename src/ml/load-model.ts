import type * as tf from '@tensorflow/tfjs-core';
import { loadLayersModel, type LayersModel } from '@tensorflow/tfjs-layers';
import './layers/spatial-transformer.ts'; // registers the project's layer classes in this thread's registry

/**
 * Loads a TensorFlow.js layers model from its artifacts. The one way models are loaded here, so
 * every thread that loads one has the project's custom layers (the `stn`'s sampler) registered.
 */
export function loadModel(artifacts: tf.io.ModelArtifacts): Promise<LayersModel> {
  return loadLayersModel({ load: async () => artifacts });
}

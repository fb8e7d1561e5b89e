import type { BackendName } from '../config.ts';
import type { BatchGradients } from './batch-gradients.ts';

/** Messages between the training thread and a data-parallel replica (see data-parallel.ts). */
export type ToReplica =
  | {
      type: 'init';
      backend: BackendName;
      /** `model.toJSON()` of the model to replicate: layers, their configs and trainable flags. */
      topology: string;
      /** Every weight's values, in `model.weights` order. */
      weights: Float32Array[];
    }
  | {
      type: 'step';
      /** The trainable weights after the last optimizer step, in `model.trainableWeights` order; absent when unchanged. */
      trainable?: Float32Array[];
      xs: Float32Array;
      xsShape: number[];
      ys: Float32Array;
      ysShape: number[];
    };

export type FromReplica = { type: 'ready' } | { type: 'gradients'; result: BatchGradients } | { type: 'error'; message: string };

import type { io } from '@tensorflow/tfjs-core';
import type { InferenceEngineName } from '../schemas/inference-engine.ts';

/** Messages between the inference pool (API thread) and its worker threads. */
export type FromPool =
  | { type: 'load'; id: number; handle: number; version: number; modelJson: io.ModelJSON; weights: ArrayBuffer; onnx?: ArrayBuffer }
  | { type: 'predict'; id: number; handle: number; pixels: ArrayBuffer; count: number }
  | { type: 'unload'; handle: number }
  | { type: 'close' };

export type ToPool =
  | { type: 'ready' }
  | { type: 'loaded'; id: number; engine: InferenceEngineName; fallback?: string }
  | { type: 'probabilities'; id: number; probabilities: ArrayBuffer; seconds: number }
  | { type: 'failed'; id: number; message: string }
  | { type: 'closed' };

import { getKernel, registerKernel, unregisterKernel, type KernelConfig } from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm'; // registers the stock kernels that ours wrap or replace
import { conv2DBackpropFilterConfig } from './conv2d-backprop-filter.ts';
import { makeConv2DBackpropInputConfig } from './conv2d-backprop-input.ts';
import { maxPoolGradConfig } from './max-pool-grad.ts';

const ours = new Set<KernelConfig>();

/** Installs one wasm kernel in place of whatever is registered under its name. */
function install(config: KernelConfig): void {
  // unregister first: registerKernel over an existing entry works but warns on every start.
  if (getKernel(config.kernelName, 'wasm')) unregisterKernel(config.kernelName, 'wasm');
  registerKernel(config);
  ours.add(config);
}

function isOurs(kernelName: string): boolean {
  const current = getKernel(kernelName, 'wasm');
  return current !== undefined && ours.has(current);
}

/**
 * The project's wasm training kernels: the missing Conv2DBackpropFilter, and faster Conv2DBackpropInput
 * and MaxPoolGrad. Idempotent. Call it before tf.setBackend('wasm'): setBackend runs the registered
 * kernels' setupFuncs, and the Conv2DBackpropInput replacement carries the stock kernel's setup for
 * its fallback path.
 */
export function registerWasmKernels(): string[] {
  if (!isOurs('Conv2DBackpropFilter')) install(conv2DBackpropFilterConfig);
  const stockInput = getKernel('Conv2DBackpropInput', 'wasm');
  if (stockInput && !ours.has(stockInput)) install(makeConv2DBackpropInputConfig(stockInput));
  if (!isOurs('MaxPoolGrad')) install(maxPoolGradConfig);
  return ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad'];
}

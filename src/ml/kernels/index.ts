import { getKernel, registerGradient, registerKernel, unregisterKernel, type KernelConfig } from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm'; // registers the stock kernels that ours wrap or replace
import { fusedBatchNormGradConfig } from '../gradients/fused-batch-norm.ts';
import { conv2DBackpropFilterConfig } from './conv2d-backprop-filter.ts';
import { makeBatchMatMulConfig } from './batch-mat-mul.ts';
import { makeConv2DBackpropInputConfig } from './conv2d-backprop-input.ts';
import { makeIdentityConfig } from './identity.ts';
import { maxPoolGradConfig } from './max-pool-grad.ts';
import { makeSumConfig } from './sum.ts';

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

/** Installs a kernel that handles some cases itself and hands the rest to the stock one it wraps. */
function wrapStock(kernelName: string, wrap: (stock: KernelConfig) => KernelConfig): void {
  const stock = getKernel(kernelName, 'wasm');
  if (stock && !ours.has(stock)) install(wrap(stock));
}

/**
 * The project's wasm training kernels: the missing Conv2DBackpropFilter, and faster Conv2DBackpropInput,
 * MaxPoolGrad, transposed BatchMatMul, bias-gradient Sum and a copy-free Identity; and a batch-norm
 * gradient without the Tile that is slow on wasm. Idempotent. Call it
 * before tf.setBackend('wasm'): setBackend runs the registered kernels' setupFuncs, and the wrappers
 * carry the stock kernel's setup for their fallback paths.
 */
export function registerWasmKernels(): string[] {
  if (!isOurs('Conv2DBackpropFilter')) install(conv2DBackpropFilterConfig);
  wrapStock('Conv2DBackpropInput', makeConv2DBackpropInputConfig);
  if (!isOurs('MaxPoolGrad')) install(maxPoolGradConfig);
  wrapStock('BatchMatMul', makeBatchMatMulConfig);
  wrapStock('Sum', makeSumConfig);
  wrapStock('Identity', makeIdentityConfig);
  registerGradient(fusedBatchNormGradConfig); // replaces core's, which is slow on wasm (see its file)
  return ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad', 'BatchMatMul', 'Sum', 'Identity', 'FusedBatchNorm gradient'];
}

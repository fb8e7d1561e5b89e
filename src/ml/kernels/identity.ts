import { Identity, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Identity as a new reference to the same data, as the wasm Reshape and the cpu Identity already
 * do: no kernel writes into its inputs, so sharing is safe. The stock kernel copies, and training
 * calls it ~40 times a batch (gradient bookkeeping), ~4 ms of copying per MNIST batch.
 */
function identity(args: { inputs: { x: TensorInfo }; backend: BackendWasm }): TensorInfo {
  const { inputs: { x }, backend } = args;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function makeIdentityConfig(stock: KernelConfig): KernelConfig {
  return {
    kernelName: Identity,
    backendName: 'wasm',
    kernelFunc: ((args: { inputs: { x: TensorInfo }; backend: BackendWasm }) =>
      args.inputs.x.dtype === 'string' ? stock.kernelFunc(args as never) : identity(args)) as unknown as KernelFunc,
    setupFunc: stock.setupFunc,
  };
}

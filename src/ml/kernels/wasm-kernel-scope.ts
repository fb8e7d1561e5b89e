import { getKernel, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Runs other wasm kernels from inside a kernel by calling their kernelFuncs directly rather than
 * through tf ops: the intermediates are then plain backend data — never on the gradient tape, never
 * counted by the engine, untouched by tidy() — so freeing them is entirely our job, and this scope
 * does it, on the error path too.
 */
export class WasmKernelScope {
  private readonly owned = new Set<TensorInfo>();

  constructor(readonly backend: BackendWasm) {}

  run(kernelName: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap = {}): TensorInfo {
    const kernel = getKernel(kernelName, 'wasm');
    if (!kernel) throw new Error(`wasm kernel ${kernelName} is not registered`);
    const out = kernel.kernelFunc({ inputs, attrs, backend: this.backend }) as TensorInfo;
    this.owned.add(out);
    return out;
  }

  /** A fresh float32 tensor the caller fills through `typedArrayFromHeap`. */
  alloc(shape: number[]): TensorInfo {
    const out = this.backend.makeOutput(shape, 'float32');
    this.owned.add(out);
    return out;
  }

  /** Hands `t` to the caller (the kernel's return value) instead of freeing it with the rest. */
  keep(t: TensorInfo): TensorInfo {
    this.owned.delete(t);
    return t;
  }

  dispose(): void {
    for (const t of this.owned) this.backend.disposeData(t.dataId);
    this.owned.clear();
  }
}

/** The same data seen with another shape (a free reshape: the wasm kernels read only id + shape). */
export function view(t: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

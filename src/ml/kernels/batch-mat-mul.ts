import { BatchMatMul, util, type BatchMatMulAttrs, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { WasmKernelScope } from './wasm-kernel-scope.ts';

type Args = { inputs: { a: TensorInfo; b: TensorInfo }; backend: BackendWasm; attrs: BatchMatMulAttrs };

/**
 * The stock kernel sends a product to XNNPACK only when neither side is transposed; otherwise it
 * runs a scalar triple loop — which is what a dense layer's backward pass asks for (dx = dy·Wᵀ,
 * dW = xᵀ·dy; ~3 ms each for the MNIST CNN's 1568×10 layer at batch 128). Transposing the operand
 * explicitly (a fast copy) and multiplying untransposed is several times faster. Batched products
 * go to the stock kernel unchanged.
 */
export function makeBatchMatMulConfig(stock: KernelConfig): KernelConfig {
  const stockMatMul = stock.kernelFunc as unknown as (args: Args) => TensorInfo;
  function batchMatMul(args: Args): TensorInfo {
    const { inputs: { a, b }, backend, attrs } = args;
    const single = (t: TensorInfo) => util.sizeFromShape(t.shape.slice(0, -2)) === 1;
    if (!(attrs.transposeA || attrs.transposeB) || !single(a) || !single(b)) return stockMatMul(args);
    const scope = new WasmKernelScope(backend);
    try {
      const untransposed = (t: TensorInfo, transposed: boolean) => {
        if (!transposed) return t;
        const [rows, cols] = t.shape.slice(-2);
        return scope.run('Transpose', { x: { dataId: t.dataId, shape: [rows, cols], dtype: t.dtype } }, { perm: [1, 0] });
      };
      const product = stockMatMul({
        inputs: { a: untransposed(a, attrs.transposeA), b: untransposed(b, attrs.transposeB) },
        backend,
        attrs: { transposeA: false, transposeB: false },
      });
      const rank = Math.max(a.shape.length, b.shape.length);
      return { ...product, shape: [...new Array(rank - 2).fill(1), ...product.shape.slice(-2)] };
    } finally {
      scope.dispose();
    }
  }
  return { kernelName: BatchMatMul, backendName: 'wasm', kernelFunc: batchMatMul as unknown as KernelFunc, setupFunc: stock.setupFunc };
}

import { Sum, util, type KernelConfig, type KernelFunc, type SumAttrs, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Args = { inputs: { x: TensorInfo }; backend: BackendWasm; attrs: SumAttrs };

/**
 * Sum over the leading axes (a conv or dense bias gradient: dy [N,H,W,C] summed to [C]) in one pass
 * over the data. The stock kernel first transposes the reduced axes innermost — a full copy of dy —
 * and then sums. Other reductions go to the stock kernel.
 */
/**
 * Column sums of a rows×cols matrix, in doubles (100k float32 additions would drift). Eight columns
 * at a time in local variables: V8 keeps them in registers, ~4× faster than an array of sums.
 */
export function sumRows(src: Float32Array, rows: number, cols: number): Float64Array {
  const acc = new Float64Array(cols);
  const end = rows * cols;
  let c = 0;
  for (; c + 8 <= cols; c += 8) {
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (let i = c; i < end; i += cols) {
      a0 += src[i];
      a1 += src[i + 1];
      a2 += src[i + 2];
      a3 += src[i + 3];
      a4 += src[i + 4];
      a5 += src[i + 5];
      a6 += src[i + 6];
      a7 += src[i + 7];
    }
    acc.set([a0, a1, a2, a3, a4, a5, a6, a7], c);
  }
  for (; c < cols; c++) {
    let a = 0;
    for (let i = c; i < end; i += cols) a += src[i];
    acc[c] = a;
  }
  return acc;
}

export function makeSumConfig(stock: KernelConfig): KernelConfig {
  function sum(args: Args): TensorInfo {
    const { inputs: { x }, backend, attrs } = args;
    const rank = x.shape.length;
    const axes = util.parseAxisParam(attrs.axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== 'float32') return stock.kernelFunc(args as never) as TensorInfo;

    const kept = x.shape.slice(axes.length);
    const cols = util.sizeFromShape(kept);
    const rows = util.sizeFromShape(x.shape) / cols;
    const out = backend.makeOutput(attrs.keepDims ? [...axes.map(() => 1), ...kept] : kept, 'float32');
    // Views taken after makeOutput: growing the wasm heap detaches older views.
    const src = backend.typedArrayFromHeap(x) as Float32Array;
    const dst = backend.typedArrayFromHeap(out) as Float32Array;
    dst.set(sumRows(src, rows, cols));
    return out;
  }
  return { kernelName: Sum, backendName: 'wasm', kernelFunc: sum as unknown as KernelFunc, setupFunc: stock.setupFunc };
}

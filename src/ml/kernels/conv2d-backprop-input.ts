import {
  backend_util,
  Conv2DBackpropInput,
  type Conv2DBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { view, WasmKernelScope } from './wasm-kernel-scope.ts';

type Args = { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: BackendWasm; attrs: Conv2DBackpropInputAttrs };

/**
 * dx of a conv2d as a "full" convolution on the backend's XNNPACK Conv2D: dy (zero-stuffed by the
 * stride) convolved with the filter rotated 180° and transposed to [kh,kw,Cout,Cin]. The stock wasm
 * kernel is a naive C++ loop: for the MNIST CNN's second conv at batch 128 it took ~450 ms, this
 * ~33 ms. Cases this formulation cannot express (NCHW, padding that would have to be negative) go
 * to the stock kernel.
 */
export function makeConv2DBackpropInputConfig(stock: KernelConfig): KernelConfig {
  const fallback = stock.kernelFunc;
  function conv2DBackpropInput(args: Args): TensorInfo {
    const { inputs: { dy, filter }, backend, attrs } = args;
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs;
    if (dataFormat !== 'NHWC') return fallback(args as never) as TensorInfo;
    const info = backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode);
    const { batchSize: n, inHeight: h, inWidth: w, inChannels: cin, outChannels: cout, filterHeight: kh, filterWidth: kw } = info;
    const { strideHeight: sh, strideWidth: sw, outHeight: ho, outWidth: wo, padInfo } = info;

    // Zero-stuffing dy gives ho·sh rows (the sh−1 trailing zero rows included); these pads make the
    // stride-1 conv's output exactly h×w.
    const padTop = kh - 1 - padInfo.top;
    const padLeft = kw - 1 - padInfo.left;
    const padBottom = h - ho * sh + padInfo.top;
    const padRight = w - wo * sw + padInfo.left;
    if (Math.min(padTop, padLeft, padBottom, padRight) < 0) return fallback(args as never) as TensorInfo;

    const scope = new WasmKernelScope(backend);
    try {
      let dyFull = dy;
      if (sh > 1 || sw > 1) {
        // [N,Ho,1,Wo,1,C] padded to [N,Ho,sh,Wo,sw,C] is dy with zeros between rows and columns.
        const stuffed = scope.run(
          'PadV2',
          { x: view(dy, [n, ho, 1, wo, 1, cout]) },
          { paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 },
        );
        dyFull = view(stuffed, [n, ho * sh, wo * sw, cout]);
      }
      const rotated = rotateFilter(scope, filter, kh, kw, cin, cout);
      const dx = scope.run(
        'Conv2D',
        { x: dyFull, filter: rotated },
        { strides: [1, 1], dilations: [1, 1], pad: [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]], dataFormat: 'NHWC' },
      );
      return scope.keep(dx);
    } finally {
      scope.dispose();
    }
  }
  return {
    kernelName: Conv2DBackpropInput,
    backendName: 'wasm',
    kernelFunc: conv2DBackpropInput as unknown as KernelFunc,
    // Registered in place of the stock kernel, so the stock setup (its cwrap) would otherwise never
    // run and the fallback path would call an unbound function.
    setupFunc: stock.setupFunc,
  };
}

/** W[kh,kw,Cin,Cout] → R[a,b,co,ci] = W[kh−1−a, kw−1−b, ci, co]; a few thousand floats, so plain JS. */
function rotateFilter(scope: WasmKernelScope, filter: TensorInfo, kh: number, kw: number, cin: number, cout: number): TensorInfo {
  const out = scope.alloc([kh, kw, cout, cin]);
  // Views taken after the allocation: growing the wasm heap detaches older views.
  const src = scope.backend.typedArrayFromHeap(filter);
  const dst = scope.backend.typedArrayFromHeap(out);
  let d = 0;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const base = ((kh - 1 - a) * kw + (kw - 1 - b)) * cin * cout;
      for (let co = 0; co < cout; co++) {
        for (let ci = 0; ci < cin; ci++) dst[d++] = src[base + ci * cout + co];
      }
    }
  }
  return out;
}

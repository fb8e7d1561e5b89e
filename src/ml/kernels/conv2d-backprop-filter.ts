import {
  backend_util,
  Conv2DBackpropFilter,
  type Conv2DBackpropFilterAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { WasmKernelScope } from './wasm-kernel-scope.ts';

/**
 * dW for a conv2d, which the wasm backend lacks. dW[kh,kw,ci,co] = Σ_{n,oh,ow} x[n, oh·s−top+kh,
 * ow·s−left+kw, ci] · dy[n,oh,ow,co] is itself a convolution — over (oh,ow) with dilation s,
 * contracting over the batch — so it runs as ONE call of the backend's XNNPACK Conv2D:
 *   x  [N,H,W,Cin]   → [Cin,H,W,N]    the "batch" is Cin, the "channels" are N
 *   dy [N,Ho,Wo,Cout] → [Ho,Wo,N,Cout] the "filter"
 *   out [Cin,kh,kw,Cout] → [kh,kw,Cin,Cout]
 */
function conv2DBackpropFilter(args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: BackendWasm; attrs: Conv2DBackpropFilterAttrs }): TensorInfo {
  const { inputs: { x, dy }, backend, attrs } = args;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  if (dataFormat !== 'NHWC') throw new Error(`wasm Conv2DBackpropFilter supports only NHWC, got ${dataFormat}`);
  const info = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: cin, outChannels: cout, filterHeight: kh, filterWidth: kw } = info;
  const { strideHeight: sh, strideWidth: sw, outHeight: ho, outWidth: wo, padInfo } = info;

  // Padding that makes the inner conv's output exactly kh×kw. Negative means the forward conv never
  // read the last rows/cols of x (e.g. 'valid' with a stride that does not divide evenly); padding
  // cannot be negative, so those rows/cols are cropped instead.
  const padBottom = kh + (ho - 1) * sh - h - padInfo.top;
  const padRight = kw + (wo - 1) * sw - w - padInfo.left;

  const scope = new WasmKernelScope(backend);
  try {
    let xUsed = x;
    if (padBottom < 0 || padRight < 0) {
      const size = [n, h + Math.min(0, padBottom), w + Math.min(0, padRight), cin];
      xUsed = scope.run('Slice', { x }, { begin: [0, 0, 0, 0], size });
    }
    const xT = scope.run('Transpose', { x: xUsed }, { perm: [3, 1, 2, 0] });
    const dyT = scope.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const dW = scope.run(
      'Conv2D',
      { x: xT, filter: dyT },
      {
        strides: [1, 1],
        dilations: [sh, sw],
        pad: [[0, 0], [padInfo.top, Math.max(0, padBottom)], [padInfo.left, Math.max(0, padRight)], [0, 0]],
        dataFormat: 'NHWC',
      },
    );
    if (dW.shape[0] !== cin || dW.shape[1] !== kh || dW.shape[2] !== kw || dW.shape[3] !== cout) {
      throw new Error(`Conv2DBackpropFilter: inner conv gave [${dW.shape}], expected [${[cin, kh, kw, cout]}]`);
    }
    return scope.keep(scope.run('Transpose', { x: dW }, { perm: [1, 2, 0, 3] }));
  } finally {
    scope.dispose();
  }
}

export const conv2DBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter as unknown as KernelFunc,
};

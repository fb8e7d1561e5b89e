import { backend_util, MaxPoolGrad, type KernelConfig, type KernelFunc, type MaxPoolGradAttrs, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Args = { inputs: { dy: TensorInfo; input: TensorInfo; output: TensorInfo }; backend: BackendWasm; attrs: MaxPoolGradAttrs };

/**
 * MaxPoolGrad as one pass over the pooling windows: find each window's argmax and add dy there.
 * The stock wasm kernel visits every dx element × every window covering it and was ~3× slower for
 * the MNIST CNN's 2×2 pools; it is also wrong when a window's maximum is ≤ 0 (its running max starts
 * at FLT_MIN, so the gradient lands on element 0 of the tensor). Plain JS on views of the wasm heap;
 * ties go to the first maximum, as in TensorFlow and the cpu backend.
 */
function maxPoolGrad(args: Args): TensorInfo {
  const { inputs: { dy, input }, backend, attrs } = args;
  const { filterSize, strides, pad, dimRoundingMode } = attrs;
  const info = backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth, padInfo } = info;

  const out = backend.makeOutput(input.shape, 'float32');
  // Views taken after makeOutput: growing the wasm heap detaches older views.
  const x = backend.typedArrayFromHeap(input) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  // Offsets of one window's in-bounds pixels; the channel loop then walks consecutive addresses.
  const pixels = new Int32Array(filterHeight * filterWidth);

  let dyOffset = 0;
  for (let n = 0; n < batchSize; n++) {
    const xBatch = n * inHeight * inWidth * c;
    for (let oh = 0; oh < outHeight; oh++) {
      const top = oh * strideHeight - padInfo.top;
      const rowStart = Math.max(0, top);
      const rowEnd = Math.min(inHeight, top + filterHeight);
      for (let ow = 0; ow < outWidth; ow++, dyOffset += c) {
        const left = ow * strideWidth - padInfo.left;
        const colStart = Math.max(0, left);
        const colEnd = Math.min(inWidth, left + filterWidth);
        let size = 0;
        for (let r = rowStart; r < rowEnd; r++) {
          for (let col = colStart; col < colEnd; col++) pixels[size++] = xBatch + (r * inWidth + col) * c;
        }
        if (size === 0) continue;
        for (let ch = 0; ch < c; ch++) {
          let at = pixels[0] + ch;
          let max = x[at];
          for (let k = 1; k < size; k++) {
            const i = pixels[k] + ch;
            if (x[i] > max) {
              max = x[i];
              at = i;
            }
          }
          dx[at] += g[dyOffset + ch];
        }
      }
    }
  }
  return out;
}

export const maxPoolGradConfig: KernelConfig = {
  kernelName: MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as KernelFunc,
};

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
  if (filterHeight === 2 && filterWidth === 2 && strideHeight === 2 && strideWidth === 2 && padInfo.top === 0 && padInfo.left === 0) {
    pool2x2Grad(x, g, dx, batchSize, inHeight, inWidth, c, outHeight, outWidth);
    return out;
  }
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

/**
 * The common 2×2, stride-2 pool, unrolled: its windows neither overlap nor leave the image (no
 * padding on top/left; a 'same' pool of an odd size pads only bottom/right), so each window is
 * four reads and one write. About 3× faster than the general loop.
 */
function pool2x2Grad(x: Float32Array, g: Float32Array, dx: Float32Array, batchSize: number, inHeight: number, inWidth: number, c: number, outHeight: number, outWidth: number): void {
  const row = inWidth * c;
  let d = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const r0 = n * inHeight * row + 2 * oh * row;
      // A window whose second row/column falls outside (odd size, 'same') repeats the first one:
      // a duplicate never wins over the original (ties go to the first maximum).
      const down = 2 * oh + 1 < inHeight ? row : 0;
      for (let ow = 0; ow < outWidth; ow++) {
        const right = 2 * ow + 1 < inWidth ? c : 0;
        let i0 = r0 + 2 * ow * c;
        for (let ch = 0; ch < c; ch++, i0++) {
          const i1 = i0 + right;
          const i2 = i0 + down;
          const i3 = i2 + right;
          let at = i0;
          let max = x[i0];
          if (x[i1] > max) {
            max = x[i1];
            at = i1;
          }
          if (x[i2] > max) {
            max = x[i2];
            at = i2;
          }
          if (x[i3] > max) at = i3;
          dx[at] += g[d++];
        }
      }
    }
  }
}

export const maxPoolGradConfig: KernelConfig = {
  kernelName: MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as KernelFunc,
};

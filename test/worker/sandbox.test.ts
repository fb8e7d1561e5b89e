import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { runInSandbox, SandboxLimitError } from '../../src/worker/sandbox/fork.ts';
import { trainJob } from '../helpers/job-data.ts';

// A job's child process is held to its budgets by the worker, whatever the job does inside.
const paths = { modelsDir: tmpdir(), datasetsDir: tmpdir() };
const longJob = trainJob({ limit: 60000, epochs: 5, seed: 1 });

test('a child whose resident memory passes JOB_MAX_RSS_MB is killed, and the job fails saying so', async () => {
  const started = Date.now();
  await assert.rejects(
    runInSandbox({ params: longJob, backend: 'wasm', paths }, () => undefined, { maxRssBytes: 64 * 2 ** 20 }),
    (err: Error) => err instanceof SandboxLimitError && /more than 64 MB \(JOB_MAX_RSS_MB\)/.test(err.message),
  );
  assert.ok(Date.now() - started < 20_000, 'stopped long before the job could end');
});

test('a child still running at the end of its time budget is killed, and the job fails saying so', async () => {
  const started = Date.now();
  let batches = 0;
  await assert.rejects(
    runInSandbox({ params: longJob, backend: 'wasm', paths }, (m) => void (m.type === 'batch' && batches++), { timeBudget: { seconds: 6, endsAt: Date.now() + 6000 } }),
    (err: Error) => err instanceof SandboxLimitError && /longer than its time budget of 6 s \(maxDurationSeconds\)/.test(err.message),
  );
  const took = Date.now() - started;
  assert.ok(took >= 6000 && took < 10_000, `stopped at the budget, after ${took} ms`);
  assert.ok(batches > 0, 'it was training when stopped');
});

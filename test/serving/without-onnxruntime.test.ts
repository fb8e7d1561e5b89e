import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { nodeArgs } from '../helpers/processes.ts';

// A machine where onnxruntime-node's native library cannot load (another libc, a missing file):
// simulated by a module hook that makes importing the package fail, as the dlopen error would.
const hooks = `export async function resolve(s, c, next) {
  if (s === 'onnxruntime-node') throw new Error('libonnxruntime.so.1: cannot open shared object file (simulated)');
  return next(s, c);
}`;
const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('without a loadable ONNX Runtime, a version with model.onnx is served on TF.js, and a new version is written without one, marked to try again', async () => {
  const args = ['--import', `data:text/javascript,${encodeURIComponent(register)}`, ...nodeArgs('test/helpers/without-onnxruntime.ts')];
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: ROOT, timeout: 60_000 });
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!);
  assert.equal(result.engine, 'tfjs', 'serving fell back to TF.js');
  assert.equal(result.probabilities, 20, 'and answered');
  assert.equal(result.onnx, null);
  assert.equal(result.record.status, 'unavailable');
  assert.match(result.record.reason, /onnxruntime-node does not load: libonnxruntime\.so\.1/);
  assert.equal(result.evaluated, 100, 'the version is still scored, on TF.js');
});

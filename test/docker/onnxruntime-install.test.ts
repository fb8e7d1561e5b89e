import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// onnxruntime-node's postinstall fetches CUDA libraries from NuGet on linux/x64 unless told not to,
// and the names of its options have changed across versions. These checks hold the pinned version,
// the option this version reads, and the images together; `npm ci` on a clean clone (.ci/run) is the proof.

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (path: string) => readFile(join(root, path), 'utf8');
// Where Node finds the package (the compiled suite runs from .build/, which has no node_modules of its own).
const packageDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
const readPackage = (path: string) => readFile(join(packageDir, path), 'utf8');

test('onnxruntime-node is pinned, and the install flag in .npmrc is the one its install script reads', async () => {
  const pkg = JSON.parse(await read('package.json')) as { dependencies: Record<string, string>; allowScripts: Record<string, boolean> };
  const pinned = pkg.dependencies['onnxruntime-node'];
  assert.match(pinned, /^\d+\.\d+\.\d+$/, `an exact version, not a range: ${pinned}`);
  const installed = JSON.parse(await readPackage('package.json')) as { version: string; scripts: { postinstall: string } };
  assert.equal(installed.version, pinned);
  assert.equal(pkg.allowScripts['onnxruntime-node'], false, 'npm 11 does not run its postinstall at all');

  assert.match(await read('.npmrc'), /^onnxruntime-node-install=skip$/m);
  // npm hands .npmrc's onnxruntime-node-install to scripts as npm_config_onnxruntime_node_install.
  const script = (await readPackage('script/install.js')) + (await readPackage('script/install-utils.js'));
  assert.match(script, /process\.env\.npm_config_onnxruntime_node_install\b/);
  const run = spawnSync(process.execPath, ['script/install.js'], {
    cwd: packageDir,
    env: { PATH: process.env.PATH, npm_config_onnxruntime_node_install: 'skip', https_proxy: 'http://127.0.0.1:9', HTTPS_PROXY: 'http://127.0.0.1:9' },
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(run.status, 0, `with the flag the script exits at once, reaching nothing: ${run.stderr}`);
});

test('every image installs it without its install script, keeps only its own platform\'s library, and proves it loads', async () => {
  for (const file of ['Dockerfile.api', 'Dockerfile.worker', 'Dockerfile.worker-gpu']) {
    const text = (await read(`docker/${file}`)).replace(/\\\n/g, ' ');
    assert.match(text, /npm ci --omit=dev --ignore-scripts/, `${file}: no install scripts (no NuGet download)`);
    assert.match(text, /process\.platform\|\|a!==process\.arch/, `${file}: other platforms' libraries dropped`);
    assert.match(text, /node -e "require\('onnxruntime-node'\)"/, `${file}: the build fails if it does not load`);
    assert.doesNotMatch(text, /rm -rf[^\n&]*onnxruntime/, `${file}: not removed`);
  }
});

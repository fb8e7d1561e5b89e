import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { ConfigSchema } from '../../src/config.ts';

// The README is the first thing a new user runs; these checks keep it from drifting from the code.
const root = new URL('../../', import.meta.url);
const readme = await readFile(new URL('README.md', root), 'utf8');

/** The README's configuration table: variable → documented default (backticks stripped). */
function configTable(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readme.split('\n')) {
    const m = /^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|/.exec(line);
    if (m) rows.set(m[1], m[2].trim().replace(/^`|`$/g, ''));
  }
  return rows;
}

test('every setting the service reads is in the README table, with its real default', () => {
  const documented = configTable();
  for (const [key, schema] of Object.entries(ConfigSchema.properties)) {
    assert.ok(documented.has(key), `${key} is missing from the README's configuration table`);
    const fallback = (schema as { default?: unknown }).default;
    const shown = documented.get(key)!;
    // An empty default (e.g. "no keys") may be written in words; any other must match exactly.
    if (fallback !== undefined && fallback !== '') assert.equal(shown, String(fallback), `${key}: README says ${shown}, the code ${String(fallback)}`);
  }
  for (const key of documented.keys()) assert.ok(key in ConfigSchema.properties, `the README documents ${key}, which the service does not read`);
});

test('the README names the two commands, and CI runs exactly its test command', async () => {
  assert.match(readme, /```sh\nnpm ci && npm start\n```/, 'start command');
  assert.match(readme, /```sh\nnpm test\n```/, 'test command');
  const ci = (await readFile(new URL('.ci/run', root), 'utf8')).trim().split('\n');
  assert.equal(ci.at(-1), 'npm test', '.ci/run ends with the README test command');
  const pkg = JSON.parse(await readFile(new URL('package.json', root), 'utf8')) as { scripts: Record<string, string> };
  for (const script of ['start', 'test', 'start:api', 'start:worker']) assert.ok(pkg.scripts[script], `npm run ${script} exists`);
});

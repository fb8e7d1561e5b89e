import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { describeApi, OPENAPI_FILE, openapiSpec } from '../../src/api/openapi-spec.ts';

test('openapi/openapi.json is what the routes describe (run `npm run openapi` after changing a route)', async () => {
  const committed = JSON.parse(await readFile(OPENAPI_FILE, 'utf8'));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(await openapiSpec())));
});

test('every route the app serves is in the document, with its named responses', async () => {
  const { spec, routes } = await describeApi();
  const paths = (spec as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }).paths;
  const documented = Object.entries(paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  assert.deepEqual(documented.sort(), [...new Set(routes)].sort());
  assert.ok(routes.includes('PUT /v1/models/serving') && routes.includes('GET /v1/jobs/{id}/events'), 'the pin and the event stream are among them');
  for (const op of documented) {
    const [method, path] = op.split(' ');
    const codes = Object.keys(paths[path][method.toLowerCase()].responses);
    assert.ok(codes.length > 0 && codes.every((c) => c !== 'default'), `${op} names its responses: ${codes}`);
  }
});

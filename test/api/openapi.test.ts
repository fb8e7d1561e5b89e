import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { OPENAPI_FILE, openapiSpec } from '../../src/api/openapi-spec.ts';

test('openapi/openapi.json is what the routes describe (run `npm run openapi` after changing a route)', async () => {
  const committed = JSON.parse(await readFile(OPENAPI_FILE, 'utf8'));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(await openapiSpec())));
});

test('every public route is documented with its responses', async () => {
  const spec = (await openapiSpec()) as { paths: Record<string, Record<string, { responses: object }>> };
  const expected = {
    '/v1/jobs': ['get', 'post'],
    '/v1/jobs/{id}': ['delete', 'get'],
    '/v1/models': ['get', 'post'],
    '/v1/models/{version}': ['get'],
    '/v1/models/{version}/evaluate': ['post'],
    '/v1/datasets': ['get', 'post'],
    '/v1/datasets/{id}': ['delete', 'get'],
    '/v1/models/{version}/{file}': ['get'],
    '/v1/predict': ['post'],
    '/healthz': ['get'],
    '/readyz': ['get'],
  };
  for (const [path, methods] of Object.entries(expected)) {
    assert.deepEqual(Object.keys(spec.paths[path] ?? {}).sort(), methods, path);
    for (const m of methods) assert.ok(Object.keys(spec.paths[path][m].responses).length > 0, `${m} ${path} has responses`);
  }
});

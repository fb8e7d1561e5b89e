import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describeApi, OPENAPI_FILE, openapiSpec } from '../../src/api/openapi-spec.ts';
import { clientTypes, CLIENT_TYPES_FILE } from '../../scripts/client-types.ts';

interface Operation {
  summary?: string;
  tags?: string[];
  requestBody?: { content: Record<string, { schema: object; examples?: Record<string, { value: unknown }> }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: object }> }>;
}
type Paths = Record<string, Record<string, Operation>>;

const committed = async () => JSON.parse(await readFile(OPENAPI_FILE, 'utf8'));

test('openapi/openapi.json is what the routes describe (run `npm run openapi` after changing a route)', async () => {
  assert.deepEqual(await committed(), JSON.parse(JSON.stringify(await openapiSpec())));
});

test('the served /openapi.json and the committed document are valid OpenAPI 3.1', async () => {
  const { served } = await describeApi();
  for (const [name, doc] of [['served', served], ['committed', await committed()]] as const) {
    assert.equal((doc as { openapi: string }).openapi, '3.1.0');
    // validate() dereferences in place: give it a copy.
    await assert.doesNotReject(SwaggerParser.validate(structuredClone(doc) as Parameters<typeof SwaggerParser.validate>[0]), `${name} document`);
  }
});

test('openapi/schema.d.ts is what openapi-typescript generates from the document (run `npm run openapi`)', async () => {
  assert.equal(await readFile(CLIENT_TYPES_FILE, 'utf8'), await clientTypes(await committed()));
});

test('every route the app serves is in the document, with a summary, a tag and named responses', async () => {
  const { spec, routes } = await describeApi();
  const paths = (spec as { paths: Paths }).paths;
  const documented = Object.entries(paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  assert.deepEqual(documented.sort(), [...new Set(routes)].sort());
  assert.ok(routes.includes('PUT /v1/models/serving') && routes.includes('GET /v1/jobs/{id}/events'), 'the pin and the event stream are among them');
  for (const op of documented) {
    const [method, path] = op.split(' ');
    const { summary, tags, responses } = paths[path][method.toLowerCase()];
    assert.ok(summary && summary.length > 10, `${op} has a summary`);
    assert.ok(tags && tags.length > 0, `${op} has a tag`);
    for (const [code, r] of Object.entries(responses)) {
      assert.ok(code !== 'default' && r.description && r.description !== 'Default Response', `${op} ${code} is named: ${r.description}`);
      if (code !== '204') assert.ok(r.content && Object.values(r.content).every((m) => m.schema), `${op} ${code} has a schema`);
    }
  }
});

test('the request examples Swagger UI offers are valid requests: a quick train job, a sample digit, a pin, a canary, an evaluation', async () => {
  const paths = (await committed()).paths as Paths;
  const ajv = new Ajv2020({ strict: false, discriminator: true, validateFormats: false });
  const expected = { 'POST /v1/jobs': ['quick', 'default'], 'POST /v1/predict': ['digit'], 'PUT /v1/models/serving': ['pin', 'canary'], 'POST /v1/models/{version}/evaluate': ['mnist'] };
  for (const [op, names] of Object.entries(expected)) {
    const [method, path] = op.split(' ');
    const media = paths[path][method.toLowerCase()].requestBody!.content['application/json'];
    assert.deepEqual(Object.keys(media.examples ?? {}), names, op);
    const validate = ajv.compile(media.schema);
    for (const [name, example] of Object.entries(media.examples!)) assert.ok(validate(example.value), `${op} example ${name}: ${ajv.errorsText(validate.errors)}`);
  }
  // The quick job is small enough to answer in seconds, not a full-size job.
  const quick = paths['/v1/jobs'].post.requestBody!.content['application/json'].examples!.quick.value as { limit: number; epochs: number };
  assert.ok(quick.limit * quick.epochs <= 5000, 'the quick example trains on a few thousand images');
});

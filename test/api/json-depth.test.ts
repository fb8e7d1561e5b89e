import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Type } from 'typebox';
import { JSON_DEPTH_CEILING, nestsDeeperThan, routeJsonDepth, schemaDepth } from '../../src/api/json-depth.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';

const none = () => undefined;

test('a schema bounds the depth of its values: objects and arrays add a level, oneOf and anyOf take their deepest branch', () => {
  assert.equal(schemaDepth(Type.String()), 0);
  assert.equal(schemaDepth(Type.Object({ a: Type.Integer() }, { additionalProperties: false })), 1);
  assert.equal(schemaDepth(Type.Object({ a: Type.Array(Type.Array(Type.Number())) }, { additionalProperties: false })), 3);
  assert.equal(schemaDepth({ oneOf: [Type.String(), Type.Array(Type.Array(Type.String()))] }), 2);
  assert.equal(schemaDepth({ anyOf: [Type.Object({}, { additionalProperties: false }), Type.Null()] }), 1);
  // An object that lets unknown members in bounds nothing by itself; its branches still do.
  assert.equal(schemaDepth(Type.Object({ a: Type.String() })), Infinity);
  assert.equal(schemaDepth({ type: 'object', oneOf: [Type.Object({ a: Type.String() }, { additionalProperties: false })] }), 1);
  assert.equal(schemaDepth({ const: [[1]] }), 2);
  assert.equal(schemaDepth({ $ref: 'Thing' }, (ref) => (ref === 'Thing' ? Type.Array(Type.String()) : undefined)), 1);
  assert.equal(schemaDepth({ $ref: 'Tree' }, () => ({ type: 'array', items: { $ref: 'Tree' } })), Infinity, 'a recursive schema bounds nothing');
  assert.equal(routeJsonDepth({ $ref: 'Tree' }, () => ({ type: 'array', items: { $ref: 'Tree' } })), JSON_DEPTH_CEILING);
  assert.equal(routeJsonDepth(undefined, none), 1, 'a route without a body schema takes at most a flat {} or []');
});

test('the depth scan counts brackets outside strings only, and stops at the first one past the limit', () => {
  const deeper = (text: string, limit: number) => nestsDeeperThan(Buffer.from(text), limit);
  assert.equal(deeper('{"a":[1,2,{"b":3}]}', 3), false);
  assert.equal(deeper('{"a":[1,2,{"b":3}]}', 2), true);
  assert.equal(deeper('{"a":"[[[[{{{{"}', 1), false, 'brackets inside a string');
  assert.equal(deeper('{"a":"\\"[[[[","b":"\\\\"}', 1), false, 'escaped quotes do not end the string');
  assert.equal(deeper('["☃[",["\\u005b"]]', 2), false, 'multi-byte characters');
  const huge = Buffer.alloc(50 * 1024 * 1024, '[');
  const started = process.hrtime.bigint();
  assert.equal(nestsDeeperThan(huge, 3), true);
  assert.ok(process.hrtime.bigint() - started < 5_000_000n, 'stopped at the fourth byte, not at the end');
});

describe('the routes', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(() => api.close());

  test("each route's limit is what its body schema holds", () => {
    const limits = Object.fromEntries([...api.app.jsonDepthLimits].filter(([route]) => !route.startsWith('HEAD ')));
    assert.equal(limits['POST /v1/predict'], 3, '{"pixels": [[784 numbers]]}');
    assert.equal(limits['PUT /v1/models/serving'], 2, '{"version": 1, "canary": {"version": 2, "fraction": 0.1}}');
    assert.equal(limits['POST /v1/models/:version/evaluate'], 1);
    assert.ok(limits['POST /v1/jobs'] >= 3 && limits['POST /v1/jobs'] <= JSON_DEPTH_CEILING, '{"augment": {"scale": [1, 2]}}');
    assert.equal(limits['DELETE /v1/jobs/:id'], 1, 'no body schema');
  });

  test('megabytes of nesting to /v1/predict are refused at once with 400 naming the limit', async () => {
    for (const payload of ['['.repeat(4_000_000) + ']'.repeat(1_000_000), '{"pixels":'.repeat(400_000) + '1' + '}'.repeat(400_000)]) {
      const started = Date.now();
      const res = await api.app.inject({ method: 'POST', url: '/v1/predict', headers: { 'content-type': 'application/json' }, payload });
      assert.equal(res.statusCode, 400);
      assert.match(res.json().message, /nests deeper than 3 levels/);
      // Parsed whole, such a body held the event loop 6.6 s on a quiet machine; refused early it takes
      // tens of milliseconds, and the bound leaves room for a machine busy with the other test files.
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    }
  });

  test('a body one level deeper than its schema is refused before validation; at the limit it is parsed as before, poisoning refused', async () => {
    const pin = (payload: string) => api.app.inject({ method: 'PUT', url: '/v1/models/serving', headers: { 'content-type': 'application/json' }, payload });
    const deep = await pin('{"version":1,"canary":{"version":[2]}}');
    assert.equal(deep.statusCode, 400);
    assert.match(deep.json().message, /nests deeper than 2 levels/);
    const atLimit = await pin('{"version":999,"canary":{"version":2,"fraction":0.5}}');
    assert.equal(atLimit.statusCode, 404, 'parsed and validated: version 999 does not exist');
    const poisoned = await pin('{"__proto__":1}');
    assert.equal(poisoned.statusCode, 400);
    const cancel = await api.app.inject({ method: 'DELETE', url: '/v1/jobs/nope', headers: { 'content-type': 'application/json' }, payload: '{"a":{"b":1}}' });
    assert.equal(cancel.statusCode, 400, 'a route without a body schema takes no nested JSON');
  });
});

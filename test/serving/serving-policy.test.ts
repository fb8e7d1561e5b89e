import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseServing, servingReason } from '../../src/serving/serving-policy.ts';
import { routesToCanary } from '../../src/serving/canary-routing.ts';
import { promotionGate } from '../../src/ml/promotion-gate.ts';

// The surprise: a quick 62.9 % job replaced an 83.9 % model because "served = newest".
const versions = [
  { version: 1, testAccuracy: 0.839 },
  { version: 2, testAccuracy: 0.629 },
  { version: 3, testAccuracy: 0.85 },
  { version: 4, testAccuracy: 0.848 },
];

test('best: a new version serves only if it is at least as accurate as the one promoted before it', () => {
  const choice = chooseServing(versions, 'best');
  assert.deepEqual(choice.candidates, [3, 1], 'version 3 serves; version 1 if it does not load');
  assert.match(choice.reasons.get(1)!, /first version/);
  assert.match(choice.reasons.get(2)!, /^not promoted: 62\.90 % test accuracy is below version 1's 83\.90 %.*pin it/);
  assert.match(choice.reasons.get(3)!, /^promoted: 85\.00 % test accuracy, at least version 1's 83\.90 %/);
  assert.match(choice.reasons.get(4)!, /^not promoted: 84\.80 % .* below version 3's 85\.00 %/);
});

test('best with PROMOTION_TOLERANCE: a version a little below still serves', () => {
  const choice = chooseServing(versions, 'best', 0.005);
  assert.deepEqual(choice.candidates, [4, 3, 1]);
  assert.match(choice.reasons.get(4)!, /less PROMOTION_TOLERANCE 0\.005/);
});

test('equal accuracy is promoted, and the order of the input does not matter', () => {
  const same = [{ version: 2, testAccuracy: 0.9923 }, { version: 1, testAccuracy: 0.9923 }];
  assert.deepEqual(chooseServing(same, 'best').candidates, [2, 1]);
});

test('newest serves every new version; manual keeps the first until one is pinned', () => {
  assert.deepEqual(chooseServing(versions, 'newest').candidates, [4, 3, 2, 1]);
  assert.match(chooseServing(versions, 'newest').reasons.get(2)!, /version 4 is newer/);
  const manual = chooseServing(versions, 'manual');
  assert.deepEqual(manual.candidates, [1, 2, 3, 4], 'the first version, or the next one written if it does not load');
  assert.match(manual.reasons.get(3)!, /serves once pinned/);
});

test('under every policy the first version written serves when it is the only one', () => {
  for (const policy of ['best', 'newest', 'manual'] as const) {
    assert.deepEqual(chooseServing([{ version: 7, testAccuracy: 0.1 }], policy).candidates, [7], policy);
  }
  assert.deepEqual(chooseServing([], 'best'), { candidates: [], reasons: new Map() });
});

test('the reason a version gives: pinned, chosen, or passed over because it does not load', () => {
  const choice = chooseServing(versions, 'best');
  assert.equal(servingReason(choice, 2, 2, 2), 'pinned with PUT /v1/models/serving');
  assert.equal(servingReason(choice, 3, 2, 2), 'version 2 is pinned');
  assert.match(servingReason(choice, 3, 3, null), /^promoted/);
  assert.match(servingReason(choice, 3, 1, null), /^promoted.*; it does not load, so version 1 serves$/);
  assert.match(servingReason(choice, 1, 3, null), /^the first version written$/);
});

test('a canary takes its share of clients by a hash of their key: stable per client, a new draw for each canary version', () => {
  const clients = Array.from({ length: 4000 }, (_, i) => `key-${i}`);
  const picked = (version: number) => new Set(clients.filter((c) => routesToCanary({ version, fraction: 0.1 }, c)));
  const seven = picked(7);
  assert.ok(Math.abs(seven.size / clients.length - 0.1) < 0.02, `share ${seven.size / clients.length}`);
  assert.deepEqual(picked(7), seven, 'the same clients every time');
  const overlap = [...picked(8)].filter((c) => seven.has(c)).length;
  assert.ok(overlap < seven.size / 3, `canary 8 draws other clients (overlap ${overlap} of ${seven.size})`);
  // No key: the coin decides.
  assert.equal(routesToCanary({ version: 7, fraction: 0.1 }, undefined, () => 0.05), true);
  assert.equal(routesToCanary({ version: 7, fraction: 0.1 }, undefined, () => 0.5), false);
});

test('a version tuned on corrections passes its gate only by beating its base on held-out corrections while keeping MNIST within the allowance', () => {
  const base = { baseHeldOutAccuracy: 0.7, baseTestAccuracy: 0.99 };
  const passed = promotionGate({ ...base, heldOutAccuracy: 0.85, testAccuracy: 0.987 }, 0.005);
  assert.equal(passed.passed, true);
  assert.match(passed.reason, /^passed: 85\.00 % on the held-out corrections against the base's 70\.00 %; MNIST test 98\.70 % against the base's 99\.00 %, at most 0\.50 points lower/);
  const noBetter = promotionGate({ ...base, heldOutAccuracy: 0.7, testAccuracy: 0.99 }, 0.005);
  assert.deepEqual([noBetter.passed, noBetter.reason], [false, "failed: 70.00 % on the held-out corrections against the base's 70.00 %, no better"]);
  const forgot = promotionGate({ ...base, heldOutAccuracy: 0.9, testAccuracy: 0.98 }, 0.005);
  assert.equal(forgot.passed, false);
  assert.match(forgot.reason, /^failed: MNIST test 98\.00 % against the base's 99\.00 %, more than 0\.50 points lower/);
});

test('the gate overrides the accuracy comparison under best and newest, not a pin nor manual', () => {
  const tuned = [
    { version: 1, testAccuracy: 0.99 },
    { version: 2, testAccuracy: 0.987, gate: { passed: true, reason: 'passed: …' } }, // a little MNIST traded for the users' writing
    { version: 3, testAccuracy: 0.991, gate: { passed: false, reason: 'failed: …, no better' } },
  ];
  const best = chooseServing(tuned, 'best');
  assert.deepEqual(best.candidates, [2, 1]);
  assert.equal(best.reasons.get(2), 'promoted: its promotion gate passed: …');
  assert.equal(best.reasons.get(3), 'not promoted: its promotion gate failed: …, no better; pin it to serve it');
  assert.deepEqual(chooseServing(tuned, 'newest').candidates, [2, 1]);
  assert.deepEqual(chooseServing(tuned, 'manual').candidates, [1, 2, 3]);
  assert.equal(servingReason(best, 3, 3, 3), 'pinned with PUT /v1/models/serving');
  assert.equal(servingReason(best, 1, 3, 3, { version: 1, fraction: 0.1 }), 'canary: answers 10 % of predict requests (PUT /v1/models/serving)');
});

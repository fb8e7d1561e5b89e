import type { Canary, ModelMetadata, ServingPolicy } from '../schemas/models.ts';

export interface ScoredVersion {
  version: number;
  /** MNIST test accuracy from the version's metadata. */
  testAccuracy: number;
  /** For a version tuned on corrections: its promotion gate's decision, which overrides the policy's comparison. */
  gate?: { passed: boolean; reason: string };
}

/** What the policy reads of a version's metadata. */
export function scoredVersion(m: ModelMetadata): ScoredVersion {
  return { version: m.version, testAccuracy: m.metrics.testAccuracy, ...(m.promotion && { gate: { passed: m.promotion.passed, reason: m.promotion.reason } }) };
}

export interface ServingChoice {
  /** The versions that may serve, in the order to try them: the served one is the first that loads. */
  candidates: number[];
  /** Why each version is, or is not, a candidate. */
  reasons: Map<number, string>;
}

const pct = (x: number) => `${(100 * x).toFixed(2)} %`;

/**
 * Which version serves when none is pinned, from the versions and their test accuracies alone, so
 * every API replica comes to the same answer without sharing any state but the models volume.
 *
 * - `best`: the versions are walked in the order they were written; each one is promoted if its
 *   accuracy is at least the last promoted one's less `tolerance`. The newest promoted one serves
 *   (a quick 63 % job does not replace an 84 % model), the promoted ones before it are its fallbacks.
 * - `newest`: every new version serves.
 * - `manual`: the first version serves until someone pins another.
 * Under each, the first version written serves when there is no other. A version tuned on
 * corrections carries its own promotion gate: under `best` and `newest` it is promoted if the gate
 * passed (whatever its accuracy against the one before) and never if it failed.
 */
export function chooseServing(versions: readonly ScoredVersion[], policy: ServingPolicy, tolerance = 0): ServingChoice {
  const ordered = [...versions].sort((a, b) => a.version - b.version);
  const reasons = new Map<number, string>();
  if (ordered.length === 0) return { candidates: [], reasons };
  const first = ordered[0];

  const gateFailed = (v: ScoredVersion) => v !== first && v.gate?.passed === false;
  const refused = (v: ScoredVersion) => `not promoted: its promotion gate ${v.gate!.reason}; pin it to serve it`;

  if (policy === 'newest') {
    const eligible = ordered.filter((v) => !gateFailed(v));
    const newest = eligible.at(-1)!;
    for (const v of ordered) {
      if (gateFailed(v)) reasons.set(v.version, refused(v));
      else reasons.set(v.version, v === newest ? `the newest version${v.gate ? `, its promotion gate ${v.gate.reason}` : ''} (SERVING_POLICY=newest)` : `version ${newest.version} is newer (SERVING_POLICY=newest)`);
    }
    return { candidates: eligible.map((v) => v.version).reverse(), reasons };
  }

  if (policy === 'manual') {
    reasons.set(first.version, 'the first version written (SERVING_POLICY=manual: another serves once pinned)');
    for (const v of ordered.slice(1)) reasons.set(v.version, 'serves once pinned (SERVING_POLICY=manual)');
    return { candidates: ordered.map((v) => v.version), reasons };
  }

  const promoted = [first];
  reasons.set(first.version, 'the first version written');
  const allowance = tolerance > 0 ? ` less PROMOTION_TOLERANCE ${tolerance}` : '';
  for (const v of ordered.slice(1)) {
    const champion = promoted.at(-1)!;
    if (v.gate) {
      if (v.gate.passed) promoted.push(v);
      reasons.set(v.version, v.gate.passed ? `promoted: its promotion gate ${v.gate.reason}` : refused(v));
      continue;
    }
    // A hair of slack for accuracies that went through JSON: 0.9923 must equal 0.9923.
    if (v.testAccuracy >= champion.testAccuracy - tolerance - 1e-12) {
      promoted.push(v);
      reasons.set(v.version, `promoted: ${pct(v.testAccuracy)} test accuracy, at least version ${champion.version}'s ${pct(champion.testAccuracy)}${allowance}`);
    } else {
      reasons.set(v.version, `not promoted: ${pct(v.testAccuracy)} test accuracy is below version ${champion.version}'s ${pct(champion.testAccuracy)}${allowance} (SERVING_POLICY=best); pin it to serve it`);
    }
  }
  return { candidates: promoted.map((v) => v.version).reverse(), reasons };
}

/**
 * Why each version is or is not the served one, as `GET /v1/models` tells it: the choice above,
 * the pin, the canary, and what the registry could load.
 */
export function servingReason(choice: ServingChoice, version: number, served: number | null, pinned: number | null, canary: Canary | null = null): string {
  if (canary?.version === version && version !== served) return `canary: answers ${+(canary.fraction * 100).toFixed(2)} % of predict requests (PUT /v1/models/serving)`;
  if (pinned !== null) return version === pinned ? 'pinned with PUT /v1/models/serving' : `version ${pinned} is pinned`;
  const why = choice.reasons.get(version) ?? 'not yet read';
  const at = choice.candidates.indexOf(version);
  const servedAt = served === null ? -1 : choice.candidates.indexOf(served);
  if (version === served || at === -1 || servedAt === -1) return why;
  // Tried before the served one: it did not load. Tried after it: the served one comes first.
  return at < servedAt ? `${why}; it does not load, so version ${served} serves` : why;
}

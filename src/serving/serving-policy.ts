import type { ServingPolicy } from '../schemas/models.ts';

export interface ScoredVersion {
  version: number;
  /** MNIST test accuracy from the version's metadata. */
  testAccuracy: number;
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
 * Under each, the first version written serves when there is no other.
 */
export function chooseServing(versions: readonly ScoredVersion[], policy: ServingPolicy, tolerance = 0): ServingChoice {
  const ordered = [...versions].sort((a, b) => a.version - b.version);
  const reasons = new Map<number, string>();
  if (ordered.length === 0) return { candidates: [], reasons };
  const first = ordered[0];

  if (policy === 'newest') {
    const newest = ordered.at(-1)!;
    for (const v of ordered) reasons.set(v.version, v === newest ? 'the newest version (SERVING_POLICY=newest)' : `version ${newest.version} is newer (SERVING_POLICY=newest)`);
    return { candidates: ordered.map((v) => v.version).reverse(), reasons };
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
 * the pin, and what the registry could load.
 */
export function servingReason(choice: ServingChoice, version: number, served: number | null, pinned: number | null): string {
  if (pinned !== null) return version === pinned ? 'pinned with PUT /v1/models/serving' : `version ${pinned} is pinned`;
  const why = choice.reasons.get(version) ?? 'not yet read';
  const at = choice.candidates.indexOf(version);
  const servedAt = served === null ? -1 : choice.candidates.indexOf(served);
  if (version === served || at === -1 || servedAt === -1) return why;
  // Tried before the served one: it did not load. Tried after it: the served one comes first.
  return at < servedAt ? `${why}; it does not load, so version ${served} serves` : why;
}

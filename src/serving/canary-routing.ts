import { createHash } from 'node:crypto';
import type { Canary } from '../schemas/models.ts';

/**
 * Whether one predict request goes to the canary. With a key (the caller's API key, else the
 * X-Request-Id it sent) the answer is a hash of it, so one client sees one version for as long as
 * the canary runs rather than flipping between two; the canary's version is in the hash, so each
 * new canary draws its own share of clients. Without a key, a coin per request.
 */
export function routesToCanary(canary: Canary, key: string | undefined, random: () => number = Math.random): boolean {
  if (key === undefined) return random() < canary.fraction;
  const digest = createHash('sha256').update(`${canary.version}\0${key}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32 < canary.fraction;
}

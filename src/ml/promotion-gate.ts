import type { PromotionGate } from '../schemas/models.ts';

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;

/**
 * The gate a version tuned on corrections must pass to be served: better than its base on the
 * held-out corrections (strictly: a tie learned nothing worth a switch), and no more than
 * `maxMnistDrop` worse on the MNIST test set. A handful of wrong or hostile labels can move neither
 * figure the right way, so they cannot push a worse model into service. Pure.
 */
export function promotionGate(
  m: { heldOutAccuracy: number; baseHeldOutAccuracy: number; testAccuracy: number; baseTestAccuracy: number },
  maxMnistDrop: number,
): PromotionGate {
  const drop = m.baseTestAccuracy - m.testAccuracy;
  const corrections = `${pct(m.heldOutAccuracy)} on the held-out corrections against the base's ${pct(m.baseHeldOutAccuracy)}`;
  const mnist = `MNIST test ${pct(m.testAccuracy)} against the base's ${pct(m.baseTestAccuracy)}`;
  const allowed = `at most ${(maxMnistDrop * 100).toFixed(2)} points lower (PROMOTION_MAX_MNIST_DROP)`;
  const better = m.heldOutAccuracy > m.baseHeldOutAccuracy;
  const kept = drop <= maxMnistDrop + 1e-12;
  const reason =
    better && kept
      ? `passed: ${corrections}; ${mnist}, ${allowed}`
      : !better
        ? `failed: ${corrections}, no better`
        : `failed: ${mnist}, more than ${allowed.replace(/^at most /, '')}`;
  return { passed: better && kept, reason, ...m, maxMnistDrop };
}

/**
 * PPO's host-side arithmetic on one rollout, per sequence over its response tokens (ragged arrays:
 * row i holds response i's tokens, EOS included when it stopped).
 */

export type KlEstimator = 'k1' | 'k3';

/**
 * Per-token KL estimate between the policy and the reference from the sampled tokens' log-probs
 * (Schulman, "Approximating KL divergence"): k1 = logp - ref_logp (unbiased, can be negative per
 * token); k3 = (r - 1) - log r with r = exp(ref_logp - logp) (unbiased and never negative).
 */
export function klEstimate(logprobs: Float32Array, refLogprobs: Float32Array, estimator: KlEstimator): Float32Array {
  return logprobs.map((lp, t) => {
    const logRatio = refLogprobs[t] - lp;
    return estimator === 'k1' ? -logRatio : Math.expm1(logRatio) - logRatio;
  });
}

/**
 * Per-token rewards: -kl_coef · kl everywhere, plus the reward model's score on the last token.
 * Returns the non-score part separately, for `objective/non_score_reward`.
 */
export function tokenRewards(
  kl: Float32Array,
  klCoef: number,
  score: number,
): { rewards: Float32Array; nonScore: Float32Array } {
  const nonScore = kl.map((k) => -klCoef * k);
  const rewards = Float32Array.from(nonScore);
  rewards[rewards.length - 1] += score;
  return { rewards, nonScore };
}

/**
 * Generalised advantage estimation (Schulman et al. 2016), backwards over one response:
 *   δ_t = r_t + γ V_{t+1} - V_t        (V after the last token is 0: the episode ends there)
 *   A_t = δ_t + γ λ A_{t+1}
 *   returns_t = A_t + V_t               (the value head's regression target)
 */
export function gae(
  rewards: Float32Array,
  values: Float32Array,
  gamma: number,
  lam: number,
): { advantages: Float32Array; returns: Float32Array } {
  const n = rewards.length;
  const advantages = new Float32Array(n);
  let next = 0,
    nextValue = 0;
  for (let t = n - 1; t >= 0; t--) {
    const delta = rewards[t] + gamma * nextValue - values[t];
    next = delta + gamma * lam * next;
    advantages[t] = next;
    nextValue = values[t];
  }
  return { advantages, returns: advantages.map((a, t) => a + values[t]) };
}

/**
 * Whitens values across all tokens of all rows: (x - mean) / sqrt(var + 1e-8), using the unbiased
 * variance; with shiftMean false the mean is added back (only the scale changes), as for rewards.
 */
export function whiten(rows: Float32Array[], shiftMean = true): Float32Array[] {
  const all = rows.flatMap((r) => Array.from(r));
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  const variance = all.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(all.length - 1, 1);
  const scale = 1 / Math.sqrt(variance + 1e-8);
  return rows.map((r) => r.map((x) => (x - mean) * scale + (shiftMean ? 0 : mean)));
}

/**
 * The adaptive KL controller (Ziegler et al. 2019): nudges kl_coef so the observed KL tracks a
 * target, by at most ±20% of the error per `horizon` episodes.
 */
export function adaptKlCoef(
  klCoef: number,
  observedKl: number,
  target: number,
  horizon: number,
  episodes: number,
): number {
  const error = Math.min(Math.max(observedKl / target - 1, -0.2), 0.2);
  return klCoef * (1 + (error * episodes) / horizon);
}

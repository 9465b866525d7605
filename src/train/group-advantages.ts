/**
 * Advantages from the rewards of groups of completions to the same prompt, on the host: the rows of
 * a rollout come in groups of G consecutive completions per prompt. GRPO (Shao et al. 2024) centres
 * each reward on its group's mean and scales it by a std; RLOO (Ahmadian et al. 2024) subtracts the
 * mean of the other G - 1 rewards of its group. Names follow TRL's GRPOTrainer and RLOOTrainer.
 */

export type ScaleRewards = 'group' | 'batch' | 'none';

/** Mean and unbiased std of the values that are not NaN (NaN when there are none; std NaN below 2). */
export function nanMeanStd(xs: ArrayLike<number>): { mean: number; std: number } {
  const kept = Array.from(xs).filter((x) => !Number.isNaN(x));
  const mean = kept.reduce((a, b) => a + b, 0) / kept.length;
  const variance = kept.reduce((a, x) => a + (x - mean) ** 2, 0) / (kept.length - 1);
  return { mean, std: Math.sqrt(variance) };
}

/**
 * Each completion's reward: Σ_f weight_f · reward_f, leaving out the functions that gave none (NaN)
 * for it (TRL's nansum); `perFunc[f][i]` is function f's reward of completion i.
 */
export function weightedRewards(perFunc: Float64Array[], weights: number[]): Float64Array {
  const n = perFunc[0]?.length ?? 0;
  return Float64Array.from({ length: n }, (_, i) =>
    perFunc.reduce((a, rewards, f) => (Number.isNaN(rewards[i]) ? a : a + weights[f] * rewards[i]), 0),
  );
}

/** Each completion's group mean and (unbiased) group std. */
export function groupStats(rewards: Float64Array, g: number): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(rewards.length),
    std = new Float64Array(rewards.length);
  for (let start = 0; start < rewards.length; start += g) {
    const stats = nanMeanStd(rewards.subarray(start, start + g));
    mean.fill(stats.mean, start, start + g);
    std.fill(stats.std, start, start + g);
  }
  return { mean, std };
}

export interface Advantages {
  advantages: Float64Array;
  /** Per completion: its group's rewards are all equal (no signal to learn from). */
  zeroStd: boolean[];
  /** The std each reward was scaled by (GRPO), or the group std (RLOO), for `reward_std`. */
  std: Float64Array;
}

const isZero = (x: number) => Math.abs(x) <= 1e-8;

/**
 * GRPO: A_i = r_i - mean(group), divided by std + 1e-4 where std is the group's ("group"), the whole
 * rollout's ("batch", Hu et al.'s REINFORCE++ / "PPO-lite"), or not at all ("none", Dr. GRPO).
 */
export function grpoAdvantages(rewards: Float64Array, g: number, scale: ScaleRewards): Advantages {
  const group = groupStats(rewards, g);
  const std = scale === 'batch' ? new Float64Array(rewards.length).fill(nanMeanStd(rewards).std) : group.std;
  const advantages = rewards.map((r, i) => {
    const centred = r - group.mean[i];
    return scale === 'none' ? centred : centred / (std[i] + 1e-4);
  });
  return { advantages, zeroStd: Array.from(std, isZero), std };
}

/**
 * RLOO: A_i = r_i - (Σ_{j≠i} r_j) / (G - 1), the mean of the rest of its group; with `normalize`,
 * then whitened across the rollout: (A - mean) / (std + 1e-4).
 */
export function rlooAdvantages(rewards: Float64Array, g: number, normalize: boolean): Advantages {
  const group = groupStats(rewards, g);
  const loo = rewards.map((r, i) => r - (group.mean[i] * g - r) / (g - 1));
  const whole = nanMeanStd(loo);
  const advantages = normalize ? loo.map((a) => (a - whole.mean) / (whole.std + 1e-4)) : loo;
  return { advantages, zeroStd: Array.from(group.std, isZero), std: group.std };
}

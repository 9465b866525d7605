/**
 * GRPO's and RLOO's losses and statistics as graph code. logprobs, oldLogprobs, refLogprobs and
 * mask are [B, T] over completion positions (mask 1 on completion tokens that count); advantages
 * are [B], one per completion. Names follow TRL's GRPOTrainer and RLOOTrainer.
 */
import { maskedMean } from '../engine/nn';
import { and, cast, clip, exp, greater, less, maximum, mean, minimum, sum, unsqueeze } from '../engine/ops';
import { Tensor } from '../engine/tensor';

/** How per-token losses become one number (TRL's loss_type). */
export type LossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';

export interface ClipRange {
  /** The ratio is clipped to [1 - epsilon, 1 + epsilonHigh]. */
  epsilon: number;
  epsilonHigh: number;
}

/**
 * Per-token KL(π ‖ π_ref) estimate from the sampled tokens (Schulman's k3, never negative):
 * exp(ref - logp) - (ref - logp) - 1.
 */
export function k3Kl(logprobs: Tensor, refLogprobs: Tensor): Tensor {
  const d = refLogprobs.sub(logprobs);
  return exp(d).sub(d).sub(1);
}

/**
 * The clipped surrogate of ratio = exp(log_ratio) with advantage A (broadcast against the ratio),
 * as a loss: -min(ratio · A, clip(ratio, 1 - ε, 1 + ε_high) · A); and where the clip held it back,
 * below (A < 0) or above (A > 0) the range.
 */
export function clippedSurrogate(logRatio: Tensor, advantages: Tensor, range: ClipRange) {
  const ratio = exp(logRatio);
  const clipped = clip(ratio, 1 - range.epsilon, 1 + range.epsilonHigh);
  const loss = minimum(ratio.mul(advantages), clipped.mul(advantages)).neg();
  const low = and(less(ratio, 1 - range.epsilon), less(advantages, 0));
  const high = and(greater(ratio, 1 + range.epsilonHigh), greater(advantages, 0));
  const f = (b: Tensor) => cast(b, 'float32');
  // Either of them as the larger of the two: WebGPU runs no boolean Or.
  return { loss, low: f(low), high: f(high), region: maximum(f(low), f(high)) };
}

/**
 * Sums per-token losses into one number as `type` says: the mean over each sequence's tokens then
 * over sequences (grpo), the mean over the batch's tokens (bnpo), the sum over B × maxLength
 * (dr_grpo), or the sum over `normalizer`, the rollout's completion tokens per micro-batch (dapo).
 */
export function aggregateLoss(
  perToken: Tensor,
  mask: Tensor,
  type: LossType,
  maxCompletionLength: number,
  normalizer?: Tensor,
): Tensor {
  const masked = perToken.mul(mask);
  if (type === 'grpo') return mean(sum(masked, 1).div(maximum(sum(mask, 1), 1)));
  if (type === 'bnpo') return maskedMean(perToken, mask);
  if (type === 'dr_grpo') return mean(sum(masked, 1)).div(maxCompletionLength);
  if (!normalizer) throw new Error('the dapo loss needs the normalizer (completion tokens of the rollout)');
  return sum(masked).div(normalizer);
}

export interface GrpoLossInputs {
  logprobs: Tensor;
  oldLogprobs: Tensor;
  advantages: Tensor;
  mask: Tensor;
  /** With beta > 0. */
  refLogprobs?: Tensor;
  /** For loss_type dapo. */
  normalizer?: Tensor;
}

/**
 * GRPO's loss: the token-level clipped surrogate plus beta · k3 KL to the reference, aggregated as
 * loss_type says; with the masked means of the KL and of each clip region.
 */
export function grpoLoss(
  x: GrpoLossInputs,
  s: ClipRange & { beta: number; lossType: LossType; maxCompletionLength: number },
) {
  const surrogate = clippedSurrogate(x.logprobs.sub(x.oldLogprobs), unsqueeze(x.advantages, 1), s);
  const kl = x.refLogprobs && s.beta > 0 ? k3Kl(x.logprobs, x.refLogprobs) : undefined;
  const perToken = kl ? surrogate.loss.add(kl.mul(s.beta)) : surrogate.loss;
  return {
    loss: aggregateLoss(perToken, x.mask, s.lossType, s.maxCompletionLength, x.normalizer),
    metrics: {
      ...(kl && { kl: maskedMean(kl, x.mask) }),
      'clip_ratio/low_mean': maskedMean(surrogate.low, x.mask),
      'clip_ratio/high_mean': maskedMean(surrogate.high, x.mask),
      'clip_ratio/region_mean': maskedMean(surrogate.region, x.mask),
    },
  };
}

/**
 * RLOO's loss: the whole completion is one action, so the ratio is exp(Σ logp - Σ old_logp) over its
 * tokens and the clipped surrogate is averaged over completions (the KL is in the reward); oldLogps
 * is [B], each completion's summed log-prob at the rollout.
 */
export function rlooLoss(x: Omit<GrpoLossInputs, 'oldLogprobs'> & { oldLogps: Tensor }, s: ClipRange) {
  const logps = sum(x.logprobs.mul(x.mask), 1);
  const surrogate = clippedSurrogate(logps.sub(x.oldLogps), x.advantages, s);
  return {
    loss: mean(surrogate.loss),
    metrics: {
      'clip_ratio/low_mean': mean(surrogate.low),
      'clip_ratio/high_mean': mean(surrogate.high),
      'clip_ratio/region_mean': mean(surrogate.region),
    },
  };
}

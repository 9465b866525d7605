/**
 * PPO's losses and statistics as graph code, over response tokens only (mask [B, T] is 1 where the
 * target at that position is a response token). Names follow TRL's PPOTrainer.
 */
import { maskedMean } from '../engine/nn';
import { cast, clip, exp, greater, maximum } from '../engine/ops';
import { Tensor } from '../engine/tensor';

/**
 * The clipped surrogate objective (Schulman et al. 2017), as a loss to minimise:
 *   ratio = exp(logp - old_logp)
 *   pg_loss = mean(max(-A · ratio, -A · clip(ratio, 1 - ε, 1 + ε)))
 */
export function policyLoss(logprobs: Tensor, oldLogprobs: Tensor, advantages: Tensor, mask: Tensor, cliprange: number) {
  const logRatio = logprobs.sub(oldLogprobs);
  const ratio = exp(logRatio);
  const unclipped = advantages.neg().mul(ratio);
  const clipped = advantages.neg().mul(clip(ratio, 1 - cliprange, 1 + cliprange));
  return {
    loss: maskedMean(maximum(unclipped, clipped), mask),
    /** How often the clipped term was the larger one (the update was held back). */
    clipfrac: maskedMean(cast(greater(clipped, unclipped), 'float32'), mask),
    /** 0.5 · mean((logp - old_logp)²), a cheap estimate of KL(old ‖ new). */
    approxkl: maskedMean(logRatio.mul(logRatio), mask).mul(0.5),
    ratio: maskedMean(ratio, mask),
  };
}

/**
 * The clipped value loss: the value head regresses on the returns, with its new prediction kept
 * within ε of the rollout's:  0.5 · mean(max((V - R)², (clip(V, V_old - ε, V_old + ε) - R)²)).
 */
export function valueLoss(values: Tensor, oldValues: Tensor, returns: Tensor, mask: Tensor, cliprangeValue: number) {
  const clippedValues = oldValues.add(clip(values.sub(oldValues), -cliprangeValue, cliprangeValue));
  const unclippedLoss = values.sub(returns).pow(2);
  const clippedLoss = clippedValues.sub(returns).pow(2);
  return {
    loss: maskedMean(maximum(unclippedLoss, clippedLoss), mask).mul(0.5),
    clipfrac: maskedMean(cast(greater(clippedLoss, unclippedLoss), 'float32'), mask),
  };
}

/**
 * GRPO's and RLOO's graphs: the rollout's forward pass (the log-probs the updates and the KL need)
 * and the update's loss (./group-losses.ts). The policy is the State's unprefixed model, the frozen
 * reference is under "ref." (with adapters, the base is held there once: ./policy-models.ts).
 */
import { maskedMean } from '../engine/nn';
import { toOnnx } from '../engine/onnx';
import { detach, sum } from '../engine/ops';
import { input } from '../engine/tensor';
import { ModelConfig } from '../model/config';
import { sequenceInputs } from '../model/decoder';
import { AdapterPlace, modelInputs, sharedInputs, trainableInputs } from '../model/lora';
import { GroupRlSettings } from '../experiment/config';
import { grpoLoss, rlooLoss } from './group-losses';
import { sampledLogprobs } from './ppo-graphs';
import type { PolicyPlaces } from './policy-models';
import { StageGraph } from './stage';

export type GroupStage = 'grpo' | 'rloo';

/** Which of the optional inputs a run's graphs read: they follow from the stage and its settings. */
export interface GroupInputs {
  stage: GroupStage;
  /** The rollout's log-probs, for num_iterations > 1 (with one update the policy is still the rollout's). */
  old: boolean;
  /** The reference's log-probs: GRPO's KL term, or RLOO's KL in the reward (beta > 0). */
  ref: boolean;
  /** GRPO's KL term in the loss: the update reads the reference's log-probs (RLOO puts the KL in the reward). */
  klInLoss: boolean;
  /** The policy's log-probs at the rollout (old, or RLOO's KL): the generator's, as it drew the tokens. */
  rolloutLogprobs: boolean;
  /** The dapo loss's normalizer, the rollout's completion tokens per micro-batch. */
  normalizer: boolean;
}

export function groupInputs(stage: GroupStage, s: GroupRlSettings): GroupInputs {
  const old = s.num_iterations > 1;
  const ref = s.beta > 0;
  return {
    stage,
    old,
    ref,
    klInLoss: stage === 'grpo' && ref,
    rolloutLogprobs: old || (stage === 'rloo' && ref),
    normalizer: 'loss_type' in s && s.loss_type === 'dapo',
  };
}

/**
 * The rollout's forward pass: the reference's `ref_logprobs`, when `needs` asks for them; else no
 * pass (the policy's log-probs come from the generator). With adapters, the reference reads the
 * base through the inputs the policy's graphs read it by. `batchTokens`: the most tokens of a
 * batch it runs (0: the head in one chunk).
 */
export function rolloutGraph(
  cfg: ModelConfig,
  temperature: number,
  needs: GroupInputs,
  places: PolicyPlaces = {},
  batchTokens = 0,
) {
  if (!needs.ref) return undefined;
  const targets = input('targets', 'int32', ['B', 'T']);
  const policy = modelInputs(cfg, 'lm', '', places.policy);
  const ref = modelInputs(cfg, 'lm', 'ref.', places.ref);
  sharedInputs(policy, ref);
  const { logprobs } = sampledLogprobs(ref, cfg, sequenceInputs(), targets, { temperature, batchTokens });
  return toOnnx({ ref_logprobs: logprobs }, 'group_rollout');
}

/**
 * The update: GRPO's token-level or RLOO's sequence-level clipped loss, with TRL's statistics, on
 * micro-batches of up to `batchTokens` tokens (0: the head in one chunk); with an adapter at
 * `lora`, only it trains.
 */
export function updateGraph(
  cfg: ModelConfig,
  stage: GroupStage,
  s: GroupRlSettings,
  needs: GroupInputs,
  lora?: AdapterPlace,
  batchTokens = 0,
): StageGraph {
  const dense = (name: string) => input(name, 'float32', ['B', 'T']);
  const targets = input('targets', 'int32', ['B', 'T']);
  const mask = dense('response_mask');
  const advantages = input('advantages', 'float32', ['B']);
  const policy = modelInputs(cfg, 'lm', '', lora);
  const params = trainableInputs(policy, lora?.adapter);
  const head = { temperature: s.temperature, batchTokens, params, entropy: true };
  const { logprobs, entropy } = sampledLogprobs(policy, cfg, sequenceInputs(), targets, head);
  const range = { epsilon: s.epsilon, epsilonHigh: s.epsilon_high ?? s.epsilon };
  const { loss, metrics } =
    'loss_type' in s && stage === 'grpo'
      ? grpoLoss(
          {
            logprobs,
            oldLogprobs: needs.old ? dense('old_logprobs') : detach(logprobs),
            advantages,
            mask,
            refLogprobs: needs.klInLoss ? dense('ref_logprobs') : undefined,
            normalizer: needs.normalizer ? input('loss_normalizer', 'float32', []) : undefined,
          },
          { ...range, beta: s.beta, lossType: s.loss_type, maxCompletionLength: s.max_completion_length },
        )
      : rlooLoss(
          {
            logprobs,
            oldLogps: needs.old ? input('old_logps', 'float32', ['B']) : detach(sum(logprobs.mul(mask), 1)),
            advantages,
            mask,
          },
          range,
        );
  return {
    loss,
    params,
    metrics: { ...metrics, entropy: maskedMean(entropy!, mask) },
  };
}

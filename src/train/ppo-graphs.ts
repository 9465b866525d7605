/**
 * PPO's two graphs: the rollout's forward pass (log-probs under policy and reference, the value
 * model's values) and the update's loss, the clipped policy loss plus vf_coef times the clipped
 * value loss (./ppo-losses.ts).
 */
import { LinearLogprobs } from '../engine/linear-logprobs';
import { maskedMean } from '../engine/nn';
import { toOnnx } from '../engine/onnx';
import { Tensor, input } from '../engine/tensor';
import { ForwardInputs, Params } from '../model/architecture';
import { ModelConfig } from '../model/config';
import { HeadLogprobsOptions, lmHeadLogprobs, scoreHead, sequenceInputs, transformer } from '../model/decoder';
import { modelInputs, sharedInputs, trainableInputs } from '../model/lora';
import { PpoSettings } from '../experiment/config';
import { policyLoss, valueLoss } from './ppo-losses';
import type { PpoPlaces } from './ppo-models';
import { StageGraph } from './stage';

/**
 * A language model's log-probs of `targets` under its next-token logits divided by the sampling
 * temperature, as they were sampled from, with the statistics `o` asks for (model/decoder.ts's
 * lmHeadLogprobs: the head in chunks of tokens while it is frozen).
 */
export function sampledLogprobs(
  p: Params,
  cfg: ModelConfig,
  inputs: ForwardInputs,
  targets: Tensor,
  o: HeadLogprobsOptions,
): LinearLogprobs {
  return lmHeadLogprobs(p, cfg, transformer(p, cfg, inputs).hidden, targets, o);
}

/** The three models' inputs, each under its prefix; adapters where `places` says (./ppo-models.ts). */
function ppoInputs(cfg: ModelConfig, places: PpoPlaces) {
  const models = {
    policy: modelInputs(cfg, 'lm', 'policy.', places.policy),
    ref: modelInputs(cfg, 'lm', 'ref.', places.ref),
    value: modelInputs(cfg, 'score', 'value.', places.value),
  };
  sharedInputs(...Object.values(models));
  return models;
}

/**
 * Per-position log-probs under the reference (temperature-scaled), and the value model's values. The
 * policy's log-probs are the generator's, as it drew the tokens (TRL's PPOTrainer takes them from
 * the generation's logits too). `batchTokens`: the most tokens of a rollout batch (0: the head in one chunk).
 */
export function rolloutGraph(cfg: ModelConfig, temperature: number, places: PpoPlaces = {}, batchTokens = 0) {
  const inputs = sequenceInputs();
  const targets = input('targets', 'int32', ['B', 'T']);
  const { ref, value } = ppoInputs(cfg, places);
  return toOnnx(
    {
      ref_logprobs: sampledLogprobs(ref, cfg, inputs, targets, { temperature, batchTokens }).logprobs,
      values: scoreHead(value, transformer(value, cfg, inputs).hidden),
    },
    'ppo_rollout',
  );
}

/**
 * The PPO update: pg_loss + vf_coef · vf_loss, with TRL's statistics, on micro-batches of up to
 * `batchTokens` tokens (0: the head in one chunk).
 */
export function updateGraph(cfg: ModelConfig, s: PpoSettings, places: PpoPlaces = {}, batchTokens = 0): StageGraph {
  const inputs = sequenceInputs();
  const dense = (name: string) => input(name, 'float32', ['B', 'T']);
  const targets = input('targets', 'int32', ['B', 'T']);
  const mask = dense('response_mask');
  const { policy, value } = ppoInputs(cfg, places);
  const params = [...trainableInputs(policy, places.policy?.adapter), ...trainableInputs(value, places.value?.adapter)];
  const { temperature } = s;
  const out = sampledLogprobs(policy, cfg, inputs, targets, { temperature, batchTokens, params, entropy: true });
  const values = scoreHead(value, transformer(value, cfg, inputs).hidden);
  const pg = policyLoss(out.logprobs, dense('old_logprobs'), dense('advantages'), mask, s.cliprange);
  const vf = valueLoss(values, dense('old_values'), dense('returns'), mask, s.cliprange_value);
  return {
    loss: pg.loss.add(vf.loss.mul(s.vf_coef)),
    params,
    metrics: {
      pg_loss: pg.loss,
      vf_loss: vf.loss,
      pg_clipfrac: pg.clipfrac,
      vf_clipfrac: vf.clipfrac,
      approxkl: pg.approxkl,
      ratio: pg.ratio,
      entropy: maskedMean(out.entropy!, mask),
    },
  };
}

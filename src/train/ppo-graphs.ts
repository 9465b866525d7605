/**
 * PPO's two graphs: the rollout's forward pass (log-probs under policy and reference, the value
 * model's values) and the update's loss, the clipped policy loss plus vf_coef times the clipped
 * value loss (./ppo-losses.ts).
 */
import { maskedMean, tokenLogprobs } from '../engine/nn';
import { toOnnx } from '../engine/onnx';
import { Tensor, input } from '../engine/tensor';
import { ForwardInputs, Params } from '../model/architecture';
import { ModelConfig } from '../model/config';
import { lmHead, scoreHead, sequenceInputs, transformer } from '../model/decoder';
import { modelInputs, sharedInputs, trainableInputs } from '../model/lora';
import { PpoSettings } from '../experiment/config';
import { entropy, policyLoss, valueLoss } from './ppo-losses';
import type { PpoPlaces } from './ppo-models';
import { StageGraph } from './stage';

/** A language model's next-token logits divided by the sampling temperature, as they were sampled from. */
export function temperedLogits(p: Params, cfg: ModelConfig, inputs: ForwardInputs, temperature: number): Tensor {
  return lmHead(p, cfg, transformer(p, cfg, inputs).hidden).div(temperature);
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
 * the generation's logits too).
 */
export function rolloutGraph(cfg: ModelConfig, temperature: number, places: PpoPlaces = {}) {
  const inputs = sequenceInputs();
  const targets = input('targets', 'int32', ['B', 'T']);
  const { ref, value } = ppoInputs(cfg, places);
  return toOnnx(
    {
      ref_logprobs: tokenLogprobs(temperedLogits(ref, cfg, inputs, temperature), targets),
      values: scoreHead(value, transformer(value, cfg, inputs).hidden),
    },
    'ppo_rollout',
  );
}

/** The PPO update: pg_loss + vf_coef · vf_loss, with TRL's statistics. */
export function updateGraph(cfg: ModelConfig, s: PpoSettings, places: PpoPlaces = {}): StageGraph {
  const inputs = sequenceInputs();
  const dense = (name: string) => input(name, 'float32', ['B', 'T']);
  const targets = input('targets', 'int32', ['B', 'T']);
  const mask = dense('response_mask');
  const { policy, value } = ppoInputs(cfg, places);
  const logits = temperedLogits(policy, cfg, inputs, s.temperature);
  const values = scoreHead(value, transformer(value, cfg, inputs).hidden);
  const pg = policyLoss(tokenLogprobs(logits, targets), dense('old_logprobs'), dense('advantages'), mask, s.cliprange);
  const vf = valueLoss(values, dense('old_values'), dense('returns'), mask, s.cliprange_value);
  return {
    loss: pg.loss.add(vf.loss.mul(s.vf_coef)),
    params: [...trainableInputs(policy, places.policy?.adapter), ...trainableInputs(value, places.value?.adapter)],
    metrics: {
      pg_loss: pg.loss,
      vf_loss: vf.loss,
      pg_clipfrac: pg.clipfrac,
      vf_clipfrac: vf.clipfrac,
      approxkl: pg.approxkl,
      ratio: pg.ratio,
      entropy: maskedMean(entropy(logits), mask),
    },
  };
}

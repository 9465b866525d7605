/**
 * The reward model: the transformer with a scalar head (score.weight [1, D], and score.bias [1]
 * when a checkpoint has one), as Hugging Face's GPT2ForSequenceClassification. A sequence is
 * prompt + response + EOS, right-padded; its reward is the head read at its last real token.
 * Our config.json sets no pad_token_id, so transformers reads the last position too: in PyTorch,
 * score one unpadded prompt + response + <|endoftext|> at a time to get the same rewards.
 */
import { gather, reshape } from '../engine/ops';
import { Shape, Tensor, input } from '../engine/tensor';
import { Rng } from '../util/rng';
import { Params } from './architecture';
import { ModelConfig } from './config';
import { scoreHead, sequenceInputs, transformer } from './decoder';
import { AdapterPlace, modelInputs } from './lora';
import { NamedTensor } from './safetensors';

/** The parameter inputs of a reward model; `bias` adds score.bias; `lora` its adapter's. */
export function rewardParamInputs(cfg: ModelConfig, bias = false, prefix = '', lora?: AdapterPlace): Params {
  const p = modelInputs(cfg, 'score', prefix, lora);
  return bias ? { ...p, 'score.bias': input(`${prefix}score.bias`, 'float32', [1]) } : p;
}

/**
 * The inputs of a forward pass over B right-padded rows of T tokens, and `last`: for each reward
 * wanted, b·T + t where t is row b's last real token. Its shape is the rewards' shape.
 */
export function rewardInputs(lastShape: Shape = ['B']) {
  return { ...sequenceInputs(), last: input('last', 'int32', lastShape) };
}

/** Rewards shaped like `last`. */
export function rewards(p: Params, cfg: ModelConfig, inp: ReturnType<typeof rewardInputs>): Tensor {
  const { hidden } = transformer(p, cfg, inp); // [B, T, D]
  return lastTokenScores(p, hidden, inp.last);
}

/** The score head on the hidden states [B, T, D] at the flat positions `last` (int) → last's shape. */
export function lastTokenScores(p: Params, hidden: Tensor, last: Tensor): Tensor {
  const rows = reshape(hidden, [-1, hidden.shape[2]]); // [B*T, D]
  return scoreHead(p, gather(rows, last)); // [..., D] → [...]
}

/**
 * A backbone's parameters with a scalar head to train: score.weight as it is, or drawn from
 * N(0, 1/sqrt(D + 1)). lm_head.weight is dropped, and so is score.bias: the Bradley–Terry loss
 * cannot see a constant shift, and the reward normalisation takes it out.
 */
export function withScoreHead(params: Map<string, NamedTensor>, cfg: ModelConfig, rng: Rng): Map<string, NamedTensor> {
  const out = new Map([...params].filter(([name]) => name !== 'lm_head.weight' && name !== 'score.bias'));
  if (!out.has('score.weight')) {
    const std = 1 / Math.sqrt(cfg.nEmbd + 1);
    out.set('score.weight', {
      dtype: 'float32',
      shape: [1, cfg.nEmbd],
      data: Float32Array.from({ length: cfg.nEmbd }, () => rng.normal() * std),
    });
  }
  return out;
}

/**
 * GPT-2 as Hugging Face's GPT2LMHeadModel computes it: learned position embeddings, pre-LayerNorm
 * blocks, fused qkv projection, causal attention, GELU (tanh approximation), final LayerNorm, LM
 * head tied to the token embedding unless the checkpoint has its own. Parameters carry HF's names
 * and layouts (Conv1D weights are [in, out]).
 */
import { slice } from '../engine/ops';
import { Tensor } from '../engine/tensor';
import type { Architecture, ForwardInputs, HFConfigFormat, KV, ParamSpec, Params } from './architecture';
import {
  causalAttention,
  conv1d,
  conv1dParams,
  decoderLayers,
  embedding,
  embeddingParams,
  geluMlp,
  layerNorm,
  layerNormParams,
  splitHeads,
} from './blocks';
import type { ModelConfig } from './config';
import { gpt2Tokenizer } from './tokenizer';

/** Every trunk parameter in checkpoint order; residual projections start smaller, by 1/sqrt(2 n_layer). */
function params(cfg: ModelConfig): ParamSpec[] {
  const d = cfg.nEmbd,
    residual = 0.02 / Math.sqrt(2 * cfg.nLayer);
  const layer = (h: string): ParamSpec[] => [
    ...layerNormParams(`${h}.ln_1`, d),
    ...conv1dParams(`${h}.attn.c_attn`, d, 3 * d),
    ...conv1dParams(`${h}.attn.c_proj`, d, d, residual),
    ...layerNormParams(`${h}.ln_2`, d),
    ...conv1dParams(`${h}.mlp.c_fc`, d, 4 * d),
    ...conv1dParams(`${h}.mlp.c_proj`, 4 * d, d, residual),
  ];
  return [
    ...embeddingParams('wte', cfg.vocabSize, d),
    ...embeddingParams('wpe', cfg.nPositions, d),
    ...Array.from({ length: cfg.nLayer }, (_, i) => layer(`h.${i}`)).flat(),
    ...layerNormParams('ln_f', d),
  ];
}

/** Causal self-attention from the fused projection c_attn ([q | k | v]), then c_proj. */
function attention(x: Tensor, p: Params, h: string, cfg: ModelConfig, bias: Tensor, past?: KV): { y: Tensor; kv: KV } {
  const d = cfg.nEmbd;
  const qkv = conv1d(x, p, `${h}.attn.c_attn`); // [B, T, 3D]
  const heads = (i: number) => splitHeads(slice(qkv, 2, i * d, (i + 1) * d), cfg.nHead, cfg.headDim);
  const a = causalAttention(heads(0), heads(1), heads(2), cfg, bias, past);
  return { y: conv1d(a.y, p, `${h}.attn.c_proj`), kv: a.kv };
}

/** Transformer block `i` (pre-LayerNorm): x + attention(ln_1(x)), then + mlp(ln_2(x)). */
export function block(
  x: Tensor,
  p: Params,
  i: number,
  cfg: ModelConfig,
  bias: Tensor,
  past?: KV,
): { x: Tensor; kv: KV } {
  const h = `h.${i}`,
    eps = cfg.layerNormEpsilon;
  const a = attention(layerNorm(x, p, `${h}.ln_1`, eps), p, h, cfg, bias, past);
  x = x.add(a.y);
  x = x.add(geluMlp(layerNorm(x, p, `${h}.ln_2`, eps), p, `${h}.mlp.c_fc`, `${h}.mlp.c_proj`));
  return { x, kv: a.kv };
}

function forward(p: Params, cfg: ModelConfig, inputs: ForwardInputs, past?: KV[]): { hidden: Tensor; present: KV[] } {
  const x = embedding(p, 'wte', inputs.tokens).add(embedding(p, 'wpe', inputs.positions));
  const layers = (h: Tensor, i: number, kv?: KV) => block(h, p, i, cfg, inputs.attnBias, kv);
  const out = decoderLayers(x, cfg.nLayer, layers, past, inputs.gradientCheckpointing);
  return { hidden: layerNorm(out.x, p, 'ln_f', cfg.layerNormEpsilon), present: out.present };
}

/** Heads split nEmbd evenly, one KV head each. */
function validate(cfg: ModelConfig, where: string): void {
  if (cfg.nEmbd % cfg.nHead !== 0) {
    throw new Error(`${where}: nEmbd (${cfg.nEmbd}) must be divisible by nHead (${cfg.nHead})`);
  }
  if (cfg.headDim !== cfg.nEmbd / cfg.nHead) {
    throw new Error(`${where}: headDim (${cfg.headDim}) must be nEmbd / nHead (${cfg.nEmbd / cfg.nHead}) for GPT-2`);
  }
  if (cfg.nKvHead !== cfg.nHead) {
    throw new Error(`${where}: nKvHead (${cfg.nKvHead}) must equal nHead (${cfg.nHead}) for GPT-2`);
  }
}

const HF_DEFAULTS = {
  vocab_size: 50257,
  n_positions: 1024,
  n_embd: 768,
  n_layer: 12,
  n_head: 12,
  layer_norm_epsilon: 1e-5,
  tie_word_embeddings: true,
};

const hf: HFConfigFormat = {
  architectures: { lm: 'GPT2LMHeadModel', score: 'GPT2ForSequenceClassification' },
  lmAliases: ['GPT2Model'],
  defaults: HF_DEFAULTS,
  unsupported: {
    activation_function: (v) => v === undefined || v === 'gelu_new' || v === 'gelu_pytorch_tanh',
    n_inner: (v, json) => v === undefined || v === null || v === 4 * Number(json.n_embd ?? HF_DEFAULTS.n_embd),
    scale_attn_weights: (v) => v === undefined || v === true,
    scale_attn_by_inverse_layer_idx: (v) => v === undefined || v === false,
    add_cross_attention: (v) => v === undefined || v === false,
  },
  ownKeys: [
    'vocab_size',
    'n_positions',
    'n_ctx',
    'n_embd',
    'n_layer',
    'n_head',
    'layer_norm_epsilon',
    'activation_function',
    'tie_word_embeddings',
  ],
  read: (json) => ({
    vocabSize: json.vocab_size as number,
    nPositions: json.n_positions as number,
    nEmbd: json.n_embd as number,
    nLayer: json.n_layer as number,
    nHead: json.n_head as number,
    nKvHead: json.n_head as number,
    headDim: (json.n_embd as number) / (json.n_head as number),
    layerNormEpsilon: json.layer_norm_epsilon as number,
    tiedHead: json.tie_word_embeddings as boolean,
  }),
  write: (cfg) => ({
    vocab_size: cfg.vocabSize,
    n_positions: cfg.nPositions,
    n_ctx: cfg.nPositions,
    n_embd: cfg.nEmbd,
    n_layer: cfg.nLayer,
    n_head: cfg.nHead,
    layer_norm_epsilon: cfg.layerNormEpsilon,
    activation_function: 'gelu_new',
    tie_word_embeddings: cfg.tiedHead,
  }),
};

export const gpt2: Architecture = {
  modelType: 'gpt2',
  params,
  embedding: 'wte.weight',
  forward,
  kvShape: (cfg) => ({ layers: cfg.nLayer, nKvHead: cfg.nKvHead, headDim: cfg.headDim }),
  validate,
  hf,
  // Some files keep GPT-2's causal-mask buffers beside the weights.
  checkpoint: { trunkPrefix: 'transformer.', buffers: /^h\.\d+\.attn\.(bias|masked_bias)$/ },
  tokenizer: gpt2Tokenizer,
};

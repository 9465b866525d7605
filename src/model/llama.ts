/**
 * Llama-family decoders as Hugging Face's LlamaForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM
 * compute them: pre-RMSNorm blocks, rotary position embeddings, grouped-query attention with
 * separate q/k/v projections, a SwiGLU MLP, a final RMSNorm, and an LM head tied to the token
 * embedding or not. One implementation; the families differ in a few flags: Qwen2's q/k/v
 * projections always have biases, Qwen3 RMS-normalises each head's queries and keys before the
 * rotation. Parameters carry HF's names and torch.nn.Linear's [out, in] layout.
 */
import { Tensor } from '../engine/tensor';
import type { Architecture, KV, ParamSpec, Params } from './architecture';
import {
  Rotary,
  applyRotary,
  causalAttention,
  decoderLayers,
  embedding,
  embeddingParams,
  linear,
  linearParams,
  rmsNorm,
  rmsNormParams,
  rotaryEmbedding,
  splitHeads,
  swigluMlp,
} from './blocks';
import type { ModelConfig } from './config';
import { LlamaFamily, llamaConfigFormat } from './llama-config';
import { ropeInvFreq } from './rope';
import { gpt2Tokenizer } from './tokenizer';

/** The q/k/v projections have biases. */
const qkvBias = (f: LlamaFamily, cfg: ModelConfig) => f.qkvBias || cfg.attentionBias === true;

/** One decoder layer's parameters, in the order of HF's state dict. */
function layerParams(f: LlamaFamily, cfg: ModelConfig, l: string): ParamSpec[] {
  const d = cfg.nEmbd,
    q = cfg.nHead * cfg.headDim,
    kv = cfg.nKvHead * cfg.headDim,
    ff = cfg.intermediateSize!;
  const bias = qkvBias(f, cfg),
    outBias = cfg.attentionBias === true,
    mlpBias = cfg.mlpBias === true;
  return [
    ...linearParams(`${l}.self_attn.q_proj`, d, q, bias),
    ...linearParams(`${l}.self_attn.k_proj`, d, kv, bias),
    ...linearParams(`${l}.self_attn.v_proj`, d, kv, bias),
    ...linearParams(`${l}.self_attn.o_proj`, q, d, outBias),
    ...(f.qkNorm
      ? [...rmsNormParams(`${l}.self_attn.q_norm`, cfg.headDim), ...rmsNormParams(`${l}.self_attn.k_norm`, cfg.headDim)]
      : []),
    ...linearParams(`${l}.mlp.gate_proj`, d, ff, mlpBias),
    ...linearParams(`${l}.mlp.up_proj`, d, ff, mlpBias),
    ...linearParams(`${l}.mlp.down_proj`, ff, d, mlpBias),
    ...rmsNormParams(`${l}.input_layernorm`, d),
    ...rmsNormParams(`${l}.post_attention_layernorm`, d),
  ];
}

function params(f: LlamaFamily, cfg: ModelConfig): ParamSpec[] {
  return [
    ...embeddingParams('embed_tokens', cfg.vocabSize, cfg.nEmbd),
    ...Array.from({ length: cfg.nLayer }, (_, i) => layerParams(f, cfg, `layers.${i}`)).flat(),
    ...rmsNormParams('norm', cfg.nEmbd),
  ];
}

/** Self-attention: q/k/v projections, (Qwen3) per-head RMSNorm, rotation, attention over the cache, o_proj. */
function attention(
  f: LlamaFamily,
  x: Tensor,
  p: Params,
  a: string,
  cfg: ModelConfig,
  rotary: Rotary,
  bias: Tensor,
  past?: KV,
): { y: Tensor; kv: KV } {
  const heads = (proj: string, n: number) => splitHeads(linear(x, p, `${a}.${proj}`), n, cfg.headDim);
  let q = heads('q_proj', cfg.nHead),
    k = heads('k_proj', cfg.nKvHead);
  if (f.qkNorm) {
    q = rmsNorm(q, p, `${a}.q_norm`, cfg.layerNormEpsilon);
    k = rmsNorm(k, p, `${a}.k_norm`, cfg.layerNormEpsilon);
  }
  const out = causalAttention(
    applyRotary(q, rotary),
    applyRotary(k, rotary),
    heads('v_proj', cfg.nKvHead),
    cfg,
    bias,
    past,
  );
  return { y: linear(out.y, p, `${a}.o_proj`), kv: out.kv };
}

/** Decoder layer `i`: x + attention(input_layernorm(x)), then + mlp(post_attention_layernorm(x)). */
function layer(
  f: LlamaFamily,
  x: Tensor,
  p: Params,
  i: number,
  cfg: ModelConfig,
  rotary: Rotary,
  bias: Tensor,
  past?: KV,
): { x: Tensor; kv: KV } {
  const l = `layers.${i}`,
    eps = cfg.layerNormEpsilon;
  const a = attention(f, rmsNorm(x, p, `${l}.input_layernorm`, eps), p, `${l}.self_attn`, cfg, rotary, bias, past);
  x = x.add(a.y);
  x = x.add(swigluMlp(rmsNorm(x, p, `${l}.post_attention_layernorm`, eps), p, `${l}.mlp`));
  return { x, kv: a.kv };
}

/** The family's rules on a config (the bias flags it has, rotary settings); errors start with `where`. */
function validate(f: LlamaFamily, cfg: ModelConfig, where: string): void {
  const positive = (key: 'intermediateSize' | 'ropeTheta', integer: boolean) => {
    const v = cfg[key];
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v) || (integer && !Number.isSafeInteger(v))) {
      throw new Error(`${where}: ${key} must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
    }
  };
  positive('intermediateSize', true);
  positive('ropeTheta', false);
  if (cfg.headDim % 2 !== 0) throw new Error(`${where}: headDim (${cfg.headDim}) must be even for rotary embeddings`);
  for (const [flag, key] of [
    ['attentionBias', 'attention_bias'],
    ['mlpBias', 'mlp_bias'],
  ] as const) {
    const has = f.flags.includes(key);
    if (has && typeof cfg[flag] !== 'boolean') throw new Error(`${where}: ${flag} must be true or false`);
    if (!has && cfg[flag] !== undefined) throw new Error(`${where}: ${flag} is not a setting of ${f.modelType}`);
  }
  const s = cfg.ropeScaling;
  if (
    s &&
    !(
      s.ropeType === 'llama3' &&
      s.highFreqFactor > s.lowFreqFactor &&
      s.lowFreqFactor > 0 &&
      s.factor > 0 &&
      s.originalMaxPositionEmbeddings > 0
    )
  ) {
    throw new Error(`${where}: ropeScaling ${JSON.stringify(s)} is not a valid llama3 rope scaling`);
  }
}

function architectureOf(f: LlamaFamily): Architecture {
  return {
    modelType: f.modelType,
    params: (cfg) => params(f, cfg),
    embedding: 'embed_tokens.weight',
    forward(p, cfg, inputs, past) {
      const rotary = rotaryEmbedding(inputs.positions, ropeInvFreq(cfg));
      const x = embedding(p, 'embed_tokens', inputs.tokens);
      const layers = (h: Tensor, i: number, kv?: KV) => layer(f, h, p, i, cfg, rotary, inputs.attnBias, kv);
      const out = decoderLayers(x, cfg.nLayer, layers, past, inputs.gradientCheckpointing);
      return { hidden: rmsNorm(out.x, p, 'norm', cfg.layerNormEpsilon), present: out.present };
    },
    kvShape: (cfg) => ({ layers: cfg.nLayer, nKvHead: cfg.nKvHead, headDim: cfg.headDim }),
    validate: (cfg, where) => validate(f, cfg, where),
    hf: llamaConfigFormat(f),
    // Older files keep the rotary embedding's inverse frequencies beside the weights.
    checkpoint: { trunkPrefix: 'model.', buffers: /^(layers\.\d+\.self_attn\.)?rotary_emb\.inv_freq$/ },
    tokenizer: gpt2Tokenizer,
  };
}

const LLAMA: LlamaFamily = {
  modelType: 'llama',
  className: 'Llama',
  qkvBias: false,
  qkNorm: false,
  flags: ['attention_bias', 'mlp_bias'],
};
const QWEN2: LlamaFamily = { modelType: 'qwen2', className: 'Qwen2', qkvBias: true, qkNorm: false, flags: [] };
const QWEN3: LlamaFamily = {
  modelType: 'qwen3',
  className: 'Qwen3',
  qkvBias: false,
  qkNorm: true,
  flags: ['attention_bias'],
};

export const llama = architectureOf(LLAMA);
export const qwen2 = architectureOf(QWEN2);
export const qwen3 = architectureOf(QWEN3);

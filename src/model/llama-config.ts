/**
 * The config.json of Llama-family models (LlamaConfig, Qwen2Config, Qwen3Config): HF's field names
 * and defaults, the rotary settings in both of transformers' forms (rope_theta + rope_scaling, or
 * rope_parameters), and a refusal, naming the field, of every setting ./llama.ts does not compute.
 */
import type { HFConfigFormat } from './architecture';
import type { Llama3RopeScaling, ModelConfig } from './config';

export interface LlamaFamily {
  modelType: 'llama' | 'qwen2' | 'qwen3';
  /** The prefix of HF's classes: "Llama" → LlamaForCausalLM, LlamaForSequenceClassification. */
  className: string;
  /** The q/k/v projections have biases whatever the config says (Qwen2). */
  qkvBias: boolean;
  /** Each head's queries and keys are RMS-normalised before the rotation (Qwen3's q_norm, k_norm). */
  qkNorm: boolean;
  /** The bias flags its config.json has. */
  flags: ('attention_bias' | 'mlp_bias')[];
}

/** transformers' defaults for keys a config.json leaves out. */
const DEFAULTS: Record<LlamaFamily['modelType'], Record<string, unknown>> = {
  llama: {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
    rope_theta: 10000,
    attention_bias: false,
    mlp_bias: false,
  },
  qwen2: {
    vocab_size: 151936,
    hidden_size: 4096,
    intermediate_size: 22016,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
    rope_theta: 10000,
  },
  qwen3: {
    vocab_size: 151936,
    hidden_size: 4096,
    intermediate_size: 22016,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    head_dim: 128,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
    rope_theta: 10000,
    attention_bias: false,
  },
};

const LLAMA3_FIELDS = {
  factor: 'factor',
  lowFreqFactor: 'low_freq_factor',
  highFreqFactor: 'high_freq_factor',
  originalMaxPositionEmbeddings: 'original_max_position_embeddings',
} as const;

type Json = Record<string, unknown>;

/** Where the rotary settings are: transformers 5's rope_parameters, or rope_scaling (null: none). */
function ropeSettings(json: Json): { field: string; settings: Json } | undefined {
  const field = json.rope_parameters != null ? 'rope_parameters' : 'rope_scaling';
  const settings = json[field];
  return settings == null ? undefined : { field, settings: settings as Json };
}

/** The rope type and the key that names it (transformers' "rope_type", or the older "type"). */
function ropeType(settings: Json): { typeKey: string; type: unknown } {
  const typeKey = 'rope_type' in settings ? 'rope_type' : 'type';
  return { typeKey, type: settings[typeKey] ?? 'default' };
}

/** What is wrong with the rotary settings, named by field, or undefined when ./rope.ts computes them. */
function ropeProblem(json: Json): string | undefined {
  const rope = ropeSettings(json);
  if (!rope) return undefined;
  const { field, settings } = rope;
  if (typeof settings !== 'object' || Array.isArray(settings)) return `${field} must be an object or null`;
  const { typeKey, type } = ropeType(settings);
  if (type !== 'default' && type !== 'llama3') {
    return `${field}.${typeKey} ${JSON.stringify(type)} is not supported (supported: "default", "llama3")`;
  }
  const partial = settings.partial_rotary_factor;
  if (partial !== undefined && partial !== 1)
    return `${field}.partial_rotary_factor ${JSON.stringify(partial)} is not supported`;
  if (type === 'default') return undefined;
  for (const key of Object.values(LLAMA3_FIELDS)) {
    const v = settings[key];
    if (typeof v !== 'number' || !(v > 0)) return `${field}.${key} must be a positive number, got ${JSON.stringify(v)}`;
  }
  if (!((settings.high_freq_factor as number) > (settings.low_freq_factor as number))) {
    return `${field}.high_freq_factor must be above ${field}.low_freq_factor`;
  }
  return undefined;
}

/** rope_theta and the llama3 scaling, from either form. */
function readRope(json: Json): { ropeTheta: number; ropeScaling?: Llama3RopeScaling } {
  const rope = ropeSettings(json);
  const ropeTheta = (json.rope_parameters as Json | undefined)?.rope_theta ?? json.rope_theta;
  const s = rope?.settings;
  if (!s || ropeType(s).type === 'default') return { ropeTheta: ropeTheta as number };
  const values = Object.entries(LLAMA3_FIELDS).map(([ours, theirs]) => [ours, s[theirs]]);
  return { ropeTheta: ropeTheta as number, ropeScaling: { ropeType: 'llama3', ...Object.fromEntries(values) } };
}

/** transformers 4's form, which transformers 5 reads too. */
function writeRope(cfg: ModelConfig): Json {
  const s = cfg.ropeScaling;
  const values = (scaling: Llama3RopeScaling) =>
    Object.entries(LLAMA3_FIELDS).map(([ours, theirs]) => [theirs, scaling[ours as keyof typeof LLAMA3_FIELDS]]);
  return {
    rope_theta: cfg.ropeTheta,
    rope_scaling: s ? { rope_type: 'llama3', ...Object.fromEntries(values(s)) } : null,
  };
}

/** Every layer attends to the whole context: no sliding window, no layer of another kind. */
const fullAttentionOnly = {
  use_sliding_window: (v: unknown) => v === undefined || v === false,
  layer_types: (v: unknown) => v === undefined || (Array.isArray(v) && v.every((t) => t === 'full_attention')),
};

function read(f: LlamaFamily, json: Json): Omit<ModelConfig, 'modelType' | 'hfExtra'> {
  const hidden = json.hidden_size as number,
    heads = json.num_attention_heads as number;
  const flags: Partial<ModelConfig> = {};
  if (f.flags.includes('attention_bias')) flags.attentionBias = json.attention_bias as boolean;
  if (f.flags.includes('mlp_bias')) flags.mlpBias = json.mlp_bias as boolean;
  return {
    vocabSize: json.vocab_size as number,
    nPositions: json.max_position_embeddings as number,
    nEmbd: hidden,
    nLayer: json.num_hidden_layers as number,
    nHead: heads,
    nKvHead: (json.num_key_value_heads ?? heads) as number,
    headDim: (json.head_dim ?? hidden / heads) as number,
    layerNormEpsilon: json.rms_norm_eps as number,
    tiedHead: json.tie_word_embeddings as boolean,
    intermediateSize: json.intermediate_size as number,
    ...readRope(json),
    ...flags,
  };
}

function write(f: LlamaFamily, cfg: ModelConfig): Json {
  const flags: Json = {};
  if (f.flags.includes('attention_bias')) flags.attention_bias = cfg.attentionBias;
  if (f.flags.includes('mlp_bias')) flags.mlp_bias = cfg.mlpBias;
  return {
    vocab_size: cfg.vocabSize,
    max_position_embeddings: cfg.nPositions,
    hidden_size: cfg.nEmbd,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.nLayer,
    num_attention_heads: cfg.nHead,
    num_key_value_heads: cfg.nKvHead,
    head_dim: cfg.headDim,
    hidden_act: 'silu',
    rms_norm_eps: cfg.layerNormEpsilon,
    ...writeRope(cfg),
    tie_word_embeddings: cfg.tiedHead,
    ...flags,
  };
}

export function llamaConfigFormat(f: LlamaFamily): HFConfigFormat {
  return {
    architectures: { lm: `${f.className}ForCausalLM`, score: `${f.className}ForSequenceClassification` },
    lmAliases: [`${f.className}Model`],
    defaults: DEFAULTS[f.modelType],
    unsupported: {
      hidden_act: (v) => v === undefined || v === 'silu',
      rope_scaling: (_, json) => ropeProblem(json) ?? true,
      partial_rotary_factor: (v) => v === undefined || v === 1,
      ...(f.modelType === 'llama' ? {} : fullAttentionOnly),
    },
    ownKeys: [
      'vocab_size',
      'max_position_embeddings',
      'hidden_size',
      'intermediate_size',
      'num_hidden_layers',
      'num_attention_heads',
      'num_key_value_heads',
      'head_dim',
      'hidden_act',
      'rms_norm_eps',
      'rope_theta',
      'rope_scaling',
      'rope_parameters',
      'tie_word_embeddings',
      ...f.flags,
    ],
    read: (json) => read(f, json),
    write: (cfg) => write(f, cfg),
  };
}

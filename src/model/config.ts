/**
 * A model's hyperparameters, whatever its architecture, the named presets, and conversion to and
 * from Hugging Face's config.json (through the architecture its model_type names), so our
 * checkpoints open in PyTorch and checkpoints from the Hub open here.
 */
import { HFConfigFormat, architecture, architectureOf } from './architecture';
import { PresetName, isPresetName } from './preset-names';
import { isPlainObject } from '../util/objects';

export type { PresetName } from './preset-names';

export interface ModelConfig {
  /** Hugging Face's model_type: the architecture (./architecture.ts) that computes the model. */
  modelType: string;
  vocabSize: number;
  /** Context length. */
  nPositions: number;
  /** Width of the residual stream (hidden_size). */
  nEmbd: number;
  nLayer: number;
  /** Query heads. */
  nHead: number;
  /** Key/value heads: nHead, or fewer with grouped-query attention (num_key_value_heads). */
  nKvHead: number;
  /** Width of each attention head. */
  headDim: number;
  layerNormEpsilon: number;
  /** The LM head reuses the token embedding; otherwise it has its own lm_head.weight. */
  tiedHead: boolean;
  /** Width of the gated MLP (intermediate_size); families with a 4·nEmbd MLP leave it out. */
  intermediateSize?: number;
  /** Base of the rotary embedding's frequencies (rope_theta); families without rotary embeddings leave it out. */
  ropeTheta?: number;
  /** Llama 3's stretching of the rotary frequencies (rope_scaling with rope_type "llama3"); absent: none. */
  ropeScaling?: Llama3RopeScaling;
  /** The q, k, v and output projections have biases (attention_bias). */
  attentionBias?: boolean;
  /** The MLP's projections have biases (mlp_bias). */
  mlpBias?: boolean;
  /** Keys of an imported config.json that we do not use, written back unchanged on save. */
  hfExtra?: Record<string, unknown>;
}

/** rope_scaling of rope_type "llama3", as transformers' _compute_llama3_parameters reads it. */
export interface Llama3RopeScaling {
  ropeType: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** What sits on top of the transformer: the LM head, or a scalar score (reward and value models). */
export type Head = 'lm' | 'score';

const gpt2Base = { modelType: 'gpt2', vocabSize: 50257, nPositions: 1024, layerNormEpsilon: 1e-5, tiedHead: true };
const llamaBase = { modelType: 'llama', layerNormEpsilon: 1e-5, tiedHead: true, attentionBias: false, mlpBias: false };
const qwen2Base = { modelType: 'qwen2', vocabSize: 151936, layerNormEpsilon: 1e-6, tiedHead: true, ropeTheta: 1e6 };
const qwen3Base = { ...qwen2Base, modelType: 'qwen3', attentionBias: false };

export const PRESETS = {
  /** Small enough to train on a CPU in CI. */
  tiny: { ...gpt2Base, nPositions: 128, nEmbd: 128, nLayer: 2, nHead: 4, nKvHead: 4, headDim: 32 },
  /** 124M parameters. */
  gpt2: { ...gpt2Base, nEmbd: 768, nLayer: 12, nHead: 12, nKvHead: 12, headDim: 64 },
  /** 355M parameters. */
  'gpt2-medium': { ...gpt2Base, nEmbd: 1024, nLayer: 24, nHead: 16, nKvHead: 16, headDim: 64 },
  /** A Llama small enough to train on a CPU in CI, with grouped-query attention; GPT-2's vocabulary. */
  'tiny-llama': {
    ...llamaBase,
    vocabSize: 50257,
    nPositions: 256,
    nEmbd: 128,
    nLayer: 2,
    nHead: 4,
    nKvHead: 2,
    headDim: 32,
    intermediateSize: 352,
    ropeTheta: 10000,
  },
  /** The shape of HuggingFaceTB/SmolLM2-135M. */
  'smollm2-135m': {
    ...llamaBase,
    vocabSize: 49152,
    nPositions: 8192,
    nEmbd: 576,
    nLayer: 30,
    nHead: 9,
    nKvHead: 3,
    headDim: 64,
    intermediateSize: 1536,
    ropeTheta: 100000,
  },
  /** The shape of HuggingFaceTB/SmolLM2-360M. */
  'smollm2-360m': {
    ...llamaBase,
    vocabSize: 49152,
    nPositions: 8192,
    nEmbd: 960,
    nLayer: 32,
    nHead: 15,
    nKvHead: 5,
    headDim: 64,
    intermediateSize: 2560,
    ropeTheta: 100000,
  },
  /** The shape of Qwen/Qwen2.5-0.5B. */
  'qwen2.5-0.5b': {
    ...qwen2Base,
    nPositions: 32768,
    nEmbd: 896,
    nLayer: 24,
    nHead: 14,
    nKvHead: 2,
    headDim: 64,
    intermediateSize: 4864,
  },
  /** The shape of Qwen/Qwen3-0.6B: heads 128 wide, wider than nEmbd / nHead. */
  'qwen3-0.6b': {
    ...qwen3Base,
    nPositions: 40960,
    nEmbd: 1024,
    nLayer: 28,
    nHead: 16,
    nKvHead: 8,
    headDim: 128,
    intermediateSize: 3072,
  },
  /** The shape of meta-llama/Llama-3.2-1B, with its llama3 rotary scaling. */
  'llama-3.2-1b': {
    ...llamaBase,
    vocabSize: 128256,
    nPositions: 131072,
    nEmbd: 2048,
    nLayer: 16,
    nHead: 32,
    nKvHead: 8,
    headDim: 64,
    intermediateSize: 8192,
    ropeTheta: 500000,
    ropeScaling: {
      ropeType: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    },
  },
} satisfies Record<PresetName, ModelConfig>;

export function presetConfig(name: string): ModelConfig {
  if (!isPresetName(name)) {
    throw new Error(`unknown model preset "${name}" (known: ${Object.keys(PRESETS).join(', ')})`);
  }
  return { ...PRESETS[name] };
}

/** Sizes that can replace a config's own (an experiment's model_size, a benchmark's flags). */
export type ConfigSize = Partial<Pick<ModelConfig, 'vocabSize' | 'nPositions' | 'nEmbd' | 'nLayer' | 'nHead'>>;

/**
 * `base` at another size, with as many query heads per KV head as `base`; heads nEmbd / nHead wide
 * when either of those is given, else as wide as `base`'s.
 */
export function resizeConfig(base: ModelConfig, size: ConfigSize): ModelConfig {
  const given: ConfigSize = Object.fromEntries(Object.entries(size).filter(([, v]) => v !== undefined));
  const config = { ...base, ...given };
  const headDim = given.nEmbd !== undefined || given.nHead !== undefined ? config.nEmbd / config.nHead : base.headDim;
  return { ...config, headDim, nKvHead: config.nHead / (base.nHead / base.nKvHead) };
}

/** Checks a config; the architecture's own rules come before the shared ones on heads. Errors start with `where`. */
export function validateConfig(config: ModelConfig, where = 'model config'): void {
  const arch = architecture(config.modelType, where);
  const positive = (key: keyof ModelConfig) => {
    const v = config[key];
    if (!Number.isSafeInteger(v) || (v as number) <= 0) {
      throw new Error(`${where}: ${key} must be a positive integer, got ${v}`);
    }
  };
  (['vocabSize', 'nPositions', 'nEmbd', 'nLayer', 'nHead'] as const).forEach(positive);
  arch.validate(config, where);
  (['nKvHead', 'headDim'] as const).forEach(positive);
  if (config.nHead % config.nKvHead !== 0) {
    throw new Error(`${where}: nHead (${config.nHead}) must be a multiple of nKvHead (${config.nKvHead})`);
  }
  if (!(config.layerNormEpsilon > 0 && Number.isFinite(config.layerNormEpsilon))) {
    throw new Error(`${where}: layerNormEpsilon must be a positive number, got ${config.layerNormEpsilon}`);
  }
  if (typeof config.tiedHead !== 'boolean') throw new Error(`${where}: tiedHead must be true or false`);
}

/** Keys every architecture's config.json has, written and read here; the rest go through the architecture. */
const SHARED_KEYS = ['model_type', 'architectures', 'num_labels'];

/** The part of a tokenizer a model must match: the ids it can produce are 0 to vocabSize - 1. */
export interface Vocabulary {
  name: string;
  vocabSize: number;
}

/** A model must embed every id its tokenizer produces; a smaller vocabulary is another tokenizer's model. */
export function checkVocabSize(config: ModelConfig, tokenizer: Vocabulary, where: string): void {
  if (config.vocabSize >= tokenizer.vocabSize) return;
  throw new Error(
    `${where}: vocab_size ${config.vocabSize} is smaller than the ${tokenizer.vocabSize} tokens of the ` +
      `tokenizer (${tokenizer.name}), so token ids would fall outside the model's embedding: ` +
      'the model was made for another tokenizer',
  );
}

export function configToHF(config: ModelConfig, head: Head = 'lm'): Record<string, unknown> {
  validateConfig(config);
  const { hf } = architectureOf(config);
  return {
    ...config.hfExtra,
    model_type: config.modelType,
    architectures: [hf.architectures[head]],
    ...hf.write(config),
    ...(head === 'score' ? { num_labels: 1 } : {}),
  };
}

/**
 * Reads a parsed config.json. `head` is what its `architectures` names, if it names one.
 * Errors name `file`.
 */
export function configFromHF(json: unknown, file: string): { config: ModelConfig; head?: Head } {
  if (!isPlainObject(json)) throw new Error(`${file}: must be a JSON object`);
  const { hf } = architecture(json.model_type, file);
  for (const [key, accepts] of Object.entries(hf.unsupported)) {
    const verdict = accepts(json[key], json);
    if (verdict !== true)
      throw new Error(`${file}: ${verdict || `${key} = ${JSON.stringify(json[key])} is not supported`}`);
  }
  const head = headFromArchitectures(json.architectures, hf, file);
  if (head === 'score' && json.num_labels !== undefined && json.num_labels !== 1) {
    throw new Error(`${file}: a reward/value model needs num_labels 1, got ${JSON.stringify(json.num_labels)}`);
  }
  const config: ModelConfig = { modelType: json.model_type as string, ...hf.read({ ...hf.defaults, ...json }) };
  validateConfig(config, file);
  const own = new Set([...SHARED_KEYS, ...hf.ownKeys]);
  const extra = Object.entries(json).filter(([key]) => !own.has(key));
  if (extra.length > 0) config.hfExtra = Object.fromEntries(extra);
  return { config, head };
}

function headFromArchitectures(architectures: unknown, hf: HFConfigFormat, file: string): Head | undefined {
  if (architectures === undefined || architectures === null) return undefined;
  const names = Array.isArray(architectures) ? architectures : [architectures];
  if (names.includes(hf.architectures.score)) return 'score';
  if (names.some((n) => n === hf.architectures.lm || hf.lmAliases.includes(n))) return 'lm';
  throw new Error(
    `${file}: architectures ${JSON.stringify(architectures)} is not supported ` +
      `(expected ${hf.architectures.lm} or ${hf.architectures.score})`,
  );
}

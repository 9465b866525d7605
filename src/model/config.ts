/**
 * A model's hyperparameters, whatever its architecture, the named presets, and conversion to and
 * from Hugging Face's config.json (through the architecture its model_type names), so our
 * checkpoints open in PyTorch and checkpoints from the Hub open here.
 */
import { HFConfigFormat, architecture, architectureOf } from './architecture';
import { isPlainObject } from '../util/objects';

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
  /** Keys of an imported config.json that we do not use, written back unchanged on save. */
  hfExtra?: Record<string, unknown>;
}

/** What sits on top of the transformer: the LM head, or a scalar score (reward and value models). */
export type Head = 'lm' | 'score';

const gpt2Base = { modelType: 'gpt2', vocabSize: 50257, nPositions: 1024, layerNormEpsilon: 1e-5, tiedHead: true };

export const PRESETS = {
  /** Small enough to train on a CPU in CI. */
  tiny: { ...gpt2Base, nPositions: 128, nEmbd: 128, nLayer: 2, nHead: 4, nKvHead: 4, headDim: 32 },
  /** 124M parameters. */
  gpt2: { ...gpt2Base, nEmbd: 768, nLayer: 12, nHead: 12, nKvHead: 12, headDim: 64 },
  /** 355M parameters. */
  'gpt2-medium': { ...gpt2Base, nEmbd: 1024, nLayer: 24, nHead: 16, nKvHead: 16, headDim: 64 },
} satisfies Record<string, ModelConfig>;

export type PresetName = keyof typeof PRESETS;

export function presetConfig(name: string): ModelConfig {
  if (!Object.hasOwn(PRESETS, name)) {
    throw new Error(`unknown model preset "${name}" (known: ${Object.keys(PRESETS).join(', ')})`);
  }
  return { ...PRESETS[name as PresetName] };
}

/** Sizes that can replace a config's own (an experiment's model_size, a benchmark's flags). */
export type ConfigSize = Partial<Pick<ModelConfig, 'vocabSize' | 'nPositions' | 'nEmbd' | 'nLayer' | 'nHead'>>;

/** `base` at another size: heads nEmbd / nHead wide, with as many query heads per KV head as `base`. */
export function resizeConfig(base: ModelConfig, size: ConfigSize): ModelConfig {
  const given = Object.fromEntries(Object.entries(size).filter(([, v]) => v !== undefined));
  const config = { ...base, ...given };
  return { ...config, headDim: config.nEmbd / config.nHead, nKvHead: config.nHead / (base.nHead / base.nKvHead) };
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
  throw new Error(`${where}: vocab_size ${config.vocabSize} is smaller than the ${tokenizer.vocabSize} tokens of the ` +
    `tokenizer (${tokenizer.name}), so token ids would fall outside the model's embedding: ` +
    'the model was made for another tokenizer');
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
    if (!accepts(json[key], json)) throw new Error(`${file}: ${key} = ${JSON.stringify(json[key])} is not supported`);
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
  throw new Error(`${file}: architectures ${JSON.stringify(architectures)} is not supported ` +
    `(expected ${hf.architectures.lm} or ${hf.architectures.score})`);
}

/**
 * GPT-2 hyperparameters, the named presets, and conversion to and from Hugging Face's
 * config.json, so our checkpoints open in PyTorch and GPT-2 checkpoints from the Hub open here.
 */
import { isPlainObject } from './safetensors';

export interface GPTConfig {
  vocabSize: number;
  /** Context length: rows of the position embedding. */
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  layerNormEpsilon: number;
  /** The LM head reuses wte.weight; otherwise it has its own lm_head.weight. */
  tiedHead: boolean;
  /** Keys of an imported config.json that we do not use, written back unchanged on save. */
  hfExtra?: Record<string, unknown>;
}

/** What sits on top of the transformer: the LM head, or a scalar score (reward and value models). */
export type Head = 'lm' | 'score';

const gpt2Base = { vocabSize: 50257, nPositions: 1024, layerNormEpsilon: 1e-5, tiedHead: true };

export const PRESETS = {
  /** Small enough to train on a CPU in CI. */
  tiny: { ...gpt2Base, nPositions: 128, nEmbd: 128, nLayer: 2, nHead: 4 },
  /** 124M parameters. */
  gpt2: { ...gpt2Base, nEmbd: 768, nLayer: 12, nHead: 12 },
  /** 355M parameters. */
  'gpt2-medium': { ...gpt2Base, nEmbd: 1024, nLayer: 24, nHead: 16 },
} satisfies Record<string, GPTConfig>;

export type PresetName = keyof typeof PRESETS;

export function presetConfig(name: string): GPTConfig {
  if (!Object.hasOwn(PRESETS, name)) {
    throw new Error(`unknown model preset "${name}" (known: ${Object.keys(PRESETS).join(', ')})`);
  }
  return { ...PRESETS[name as PresetName] };
}

export function validateConfig(config: GPTConfig, where = 'GPT config'): void {
  for (const key of ['vocabSize', 'nPositions', 'nEmbd', 'nLayer', 'nHead'] as const) {
    const v = config[key];
    if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${where}: ${key} must be a positive integer, got ${v}`);
  }
  if (config.nEmbd % config.nHead !== 0) {
    throw new Error(`${where}: nEmbd (${config.nEmbd}) must be divisible by nHead (${config.nHead})`);
  }
  if (!(config.layerNormEpsilon > 0 && Number.isFinite(config.layerNormEpsilon))) {
    throw new Error(`${where}: layerNormEpsilon must be a positive number, got ${config.layerNormEpsilon}`);
  }
  if (typeof config.tiedHead !== 'boolean') throw new Error(`${where}: tiedHead must be true or false`);
}

/** The part of a tokenizer a model must match: the ids it can produce are 0 to vocabSize - 1. */
export interface Vocabulary {
  name: string;
  vocabSize: number;
}

/** A model must embed every id its tokenizer produces; a smaller vocabulary is another tokenizer's model. */
export function checkVocabSize(config: GPTConfig, tokenizer: Vocabulary, where: string): void {
  if (config.vocabSize >= tokenizer.vocabSize) return;
  throw new Error(`${where}: vocab_size ${config.vocabSize} is smaller than the ${tokenizer.vocabSize} tokens of the ` +
    `tokenizer (${tokenizer.name}), so token ids would fall outside the model's embedding: ` +
    'the model was made for another tokenizer');
}

const ARCHITECTURES: Record<Head, string> = { lm: 'GPT2LMHeadModel', score: 'GPT2ForSequenceClassification' };

/** Hugging Face's own defaults, used for keys a config.json leaves out. */
const HF_DEFAULTS = {
  vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, layer_norm_epsilon: 1e-5,
  tie_word_embeddings: true,
};

/** Settings that change GPT-2's math in ways our model does not implement: key → accepted values. */
const UNSUPPORTED: Record<string, (v: unknown, json: Record<string, unknown>) => boolean> = {
  activation_function: (v) => v === undefined || v === 'gelu_new' || v === 'gelu_pytorch_tanh',
  n_inner: (v, json) => v === undefined || v === null || v === 4 * Number(json.n_embd ?? HF_DEFAULTS.n_embd),
  scale_attn_weights: (v) => v === undefined || v === true,
  scale_attn_by_inverse_layer_idx: (v) => v === undefined || v === false,
  add_cross_attention: (v) => v === undefined || v === false,
};

/** Keys this module reads and writes itself; every other key is carried in hfExtra. */
const OWN_KEYS = new Set([
  'model_type', 'architectures', 'vocab_size', 'n_positions', 'n_ctx', 'n_embd', 'n_layer', 'n_head',
  'layer_norm_epsilon', 'activation_function', 'tie_word_embeddings', 'num_labels',
]);

export function configToHF(config: GPTConfig, head: Head = 'lm'): Record<string, unknown> {
  validateConfig(config);
  return {
    ...config.hfExtra,
    model_type: 'gpt2',
    architectures: [ARCHITECTURES[head]],
    vocab_size: config.vocabSize,
    n_positions: config.nPositions,
    n_ctx: config.nPositions,
    n_embd: config.nEmbd,
    n_layer: config.nLayer,
    n_head: config.nHead,
    layer_norm_epsilon: config.layerNormEpsilon,
    activation_function: 'gelu_new',
    tie_word_embeddings: config.tiedHead,
    ...(head === 'score' ? { num_labels: 1 } : {}),
  };
}

/**
 * Reads a parsed config.json. `head` is what its `architectures` names, if it names one.
 * Errors name `file`.
 */
export function configFromHF(json: unknown, file: string): { config: GPTConfig; head?: Head } {
  if (!isPlainObject(json)) throw new Error(`${file}: must be a JSON object`);
  if (json.model_type !== 'gpt2') {
    throw new Error(`${file}: model_type ${JSON.stringify(json.model_type)} is not supported, only "gpt2"`);
  }
  for (const [key, accepts] of Object.entries(UNSUPPORTED)) {
    if (!accepts(json[key], json)) throw new Error(`${file}: ${key} = ${JSON.stringify(json[key])} is not supported`);
  }
  const hf = { ...HF_DEFAULTS, ...json };
  const head = headFromArchitectures(json.architectures, file);
  if (head === 'score' && json.num_labels !== undefined && json.num_labels !== 1) {
    throw new Error(`${file}: a reward/value model needs num_labels 1, got ${JSON.stringify(json.num_labels)}`);
  }
  const config = {
    vocabSize: hf.vocab_size,
    nPositions: hf.n_positions,
    nEmbd: hf.n_embd,
    nLayer: hf.n_layer,
    nHead: hf.n_head,
    layerNormEpsilon: hf.layer_norm_epsilon,
    tiedHead: hf.tie_word_embeddings,
  } as GPTConfig;
  validateConfig(config, file);
  const extra = Object.entries(json).filter(([key]) => !OWN_KEYS.has(key));
  if (extra.length > 0) config.hfExtra = Object.fromEntries(extra);
  return { config, head };
}

function headFromArchitectures(architectures: unknown, file: string): Head | undefined {
  if (architectures === undefined || architectures === null) return undefined;
  const names = Array.isArray(architectures) ? architectures : [architectures];
  if (names.includes(ARCHITECTURES.score)) return 'score';
  if (names.some((n) => n === ARCHITECTURES.lm || n === 'GPT2Model')) return 'lm';
  throw new Error(`${file}: architectures ${JSON.stringify(architectures)} is not supported ` +
    `(expected ${ARCHITECTURES.lm} or ${ARCHITECTURES.score})`);
}

/** Every parameter's name and shape, in Hugging Face GPT-2 names and layouts (Conv1D weights are [in, out]). */
export function gptParamShapes(config: GPTConfig, opts: { head?: Head; scoreBias?: boolean } = {}): Map<string, number[]> {
  const { vocabSize: v, nPositions: t, nEmbd: d } = config;
  const shapes = new Map<string, number[]>([['wte.weight', [v, d]], ['wpe.weight', [t, d]]]);
  for (let i = 0; i < config.nLayer; i++) {
    const h = `h.${i}`;
    shapes.set(`${h}.ln_1.weight`, [d]).set(`${h}.ln_1.bias`, [d]);
    shapes.set(`${h}.attn.c_attn.weight`, [d, 3 * d]).set(`${h}.attn.c_attn.bias`, [3 * d]);
    shapes.set(`${h}.attn.c_proj.weight`, [d, d]).set(`${h}.attn.c_proj.bias`, [d]);
    shapes.set(`${h}.ln_2.weight`, [d]).set(`${h}.ln_2.bias`, [d]);
    shapes.set(`${h}.mlp.c_fc.weight`, [d, 4 * d]).set(`${h}.mlp.c_fc.bias`, [4 * d]);
    shapes.set(`${h}.mlp.c_proj.weight`, [4 * d, d]).set(`${h}.mlp.c_proj.bias`, [d]);
  }
  shapes.set('ln_f.weight', [d]).set('ln_f.bias', [d]);
  if (opts.head === 'score') {
    shapes.set('score.weight', [1, d]);
    if (opts.scoreBias) shapes.set('score.bias', [1]);
  } else if (!config.tiedHead) {
    shapes.set('lm_head.weight', [v, d]);
  }
  return shapes;
}

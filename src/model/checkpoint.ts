/**
 * Checkpoints: directories a PyTorch user can open with Hugging Face transformers.
 *
 *   config.json            Hugging Face's config keys for the model's architecture, and torch_dtype
 *   model.safetensors      parameters under Hugging Face's names, in float32, bfloat16 or float16
 *                          (or shards and model.safetensors.index.json, ./checkpoint-weights.ts)
 *   tokenizer.json, generation_config.json...  copied from the model it was trained from (./model-files.ts)
 *   trainer_state.json     optional: whatever the trainer saves (step, rng, metrics...), plus optimizer_step
 *   optimizer.safetensors  optional: AdamW moments, "exp_avg.<param>" and "exp_avg_sq.<param>"
 *
 * A stage that trains several models saves them as one checkpoint of model folders (PPO's
 * checkpoint-N/policy/ and checkpoint-N/value/). A save replaces the whole directory at once: it
 * is written beside the target as "<dir>.partial", then swapped in by renames, with the old one
 * parked as "<dir>.previous" until the new one is in place. A crash at any moment leaves a
 * complete checkpoint to load. Parameters that are not finite are never saved, nor loaded; weights
 * are float32 in memory whatever their dtype on disk.
 */
import * as fs from 'fs';
import * as path from 'path';
import { architectureOf } from './architecture';
import { CHECKPOINT_FILES as FILES, MODEL_FOLDER, readableDir, saveFolder } from './checkpoint-layout';
import { checkVocabSize, configFromHF, configToHF, Head, ModelConfig, validateConfig, Vocabulary } from './config';
import { readWeights, StoredWeights, writeWeights } from './checkpoint-weights';
import { writeAdapter } from './adapter-files';
import { hfName, paramShapes, tokenizerFor } from './decoder';
import { LoraAdapter, trainedNames } from './lora';
import { LARGEST, OVERFLOW } from './half';
import { copyCompanionFiles, GenerationConfig, readGenerationConfig } from './model-files';
import { FLOAT_DTYPES, FloatDType, NamedTensor, readSafetensors, writeSafetensors } from './safetensors';
import { readJsonObjectFile, writeJsonFile } from '../util/json-files';

export { NoCheckpointError } from './checkpoint-layout';

/** Free-form trainer bookkeeping, stored as JSON. */
export type TrainerState = Record<string, unknown>;

export interface OptimizerState {
  /** AdamW's update count, used for bias correction. */
  step: number;
  expAvg: Map<string, NamedTensor>;
  expAvgSq: Map<string, NamedTensor>;
}

export interface CheckpointContents {
  config: ModelConfig;
  /** float32, named as in paramShapes; a score head is saved when "score.weight" is present. */
  params: Map<string, NamedTensor>;
  trainerState?: TrainerState;
  optimizerState?: OptimizerState;
  /** The model's dtype: config.json's torch_dtype, and the weights' on disk unless storeFloat32 (default float32). */
  dtype?: FloatDType;
  /** Weights stay float32 on disk whatever `dtype`, so training resumes from them exactly. */
  storeFloat32?: boolean;
  /** A model folder whose tokenizer and generation files the saved folder gets copies of. */
  source?: string;
  /** Weights above this many bytes are saved in shards (default transformers' 5 GB). */
  maxShardSize?: number;
  /**
   * The model is this adapter on a frozen base: `params` are what it trains (its LoRA matrices and
   * saved modules), written as a PEFT adapter folder (./adapter-files.ts), always float32.
   */
  adapter?: LoraAdapter;
}

export interface LoadedCheckpoint extends CheckpointContents {
  head: Head;
  /** config.json's torch_dtype, else the dtype most of the weights were stored in. */
  dtype: FloatDType;
  /** The folder read, whose tokenizer and generation files saves made from it copy. */
  source: string;
  /** Its special token ids: the eos ids any of which ends a generation. */
  generation: GenerationConfig;
}

/** The key in trainer_state.json that holds OptimizerState.step. */
const OPTIMIZER_STEP = 'optimizer_step';
const MOMENTS = { expAvg: 'exp_avg.', expAvgSq: 'exp_avg_sq.' } as const;

/** Thrown by saveCheckpoint and loadCheckpoint for a parameter that holds NaN or ±Infinity. */
export class NonFiniteParamsError extends Error {
  constructor(
    where: string,
    readonly tensor: string,
    readonly value: number,
  ) {
    super(
      `${where}: tensor "${tensor}" holds ${value}; the weights are not finite (the training that made them diverged)`,
    );
  }
}

export function saveCheckpoint(dir: string, ckpt: CheckpointContents): void {
  dir = path.resolve(dir);
  checkContents(ckpt, `saveCheckpoint(${dir})`);
  saveFolder(dir, [], (partial) => writeContents(partial, ckpt));
}

/** Saves several models as one checkpoint, each in the subfolder of its name, replaced all at once. */
export function saveMultiModelCheckpoint(dir: string, models: Record<string, CheckpointContents>): void {
  dir = path.resolve(dir);
  for (const [name, ckpt] of Object.entries(models)) checkContents(ckpt, `saveCheckpoint(${path.join(dir, name)})`);
  saveFolder(dir, Object.keys(models), (partial) => {
    for (const [name, ckpt] of Object.entries(models)) writeContents(path.join(partial, name), ckpt);
  });
}

function checkContents(ckpt: CheckpointContents, where: string): void {
  validateConfig(ckpt.config, where);
  const head = headOf(ckpt.params);
  const expected = ckpt.adapter
    ? adapterShapes(ckpt.adapter, ckpt.config, head)
    : expectedShapes(ckpt.config, head, ckpt.params);
  checkParams(ckpt.params, expected, where);
  checkFinite(ckpt.params, where);
  if (!ckpt.storeFloat32 && !ckpt.adapter) checkRepresentable(ckpt.params, ckpt.dtype ?? 'float32', where);
  if (ckpt.optimizerState) checkOptimizerState(ckpt.optimizerState, ckpt.params, where);
  if (ckpt.trainerState && OPTIMIZER_STEP in ckpt.trainerState) {
    throw new Error(`${where}: trainerState may not use the reserved key "${OPTIMIZER_STEP}"`);
  }
}

/** One model's files in a new folder. */
function writeContents(dir: string, ckpt: CheckpointContents): void {
  fs.mkdirSync(dir, { recursive: true });
  const dtype = ckpt.dtype ?? 'float32';
  if (ckpt.adapter) writeAdapter(dir, ckpt.adapter, ckpt.params, ckpt.config, headOf(ckpt.params));
  else {
    // torch_dtype, the key every version of transformers reads, names the model's dtype.
    writeJsonFile(path.join(dir, FILES.config), {
      ...configToHF(ckpt.config, headOf(ckpt.params)),
      torch_dtype: dtype,
    });
    writeWeights(dir, hfNames(ckpt.params, ckpt.config), ckpt.storeFloat32 ? 'float32' : dtype, ckpt.maxShardSize);
  }
  if (ckpt.source) copyCompanionFiles(ckpt.source, dir);
  const opt = ckpt.optimizerState;
  if (ckpt.trainerState || opt) {
    const state = { ...ckpt.trainerState, ...(opt ? { [OPTIMIZER_STEP]: opt.step } : {}) };
    writeJsonFile(path.join(dir, FILES.trainerState), state);
  }
  if (opt) writeSafetensors(path.join(dir, FILES.optimizer), momentTensors(opt));
}

/**
 * Loads one of our checkpoints or a Hugging Face directory of a supported architecture: strips the
 * trunk's prefix (GPT-2's "transformer."), drops buffers that are not parameters (causal masks),
 * ties an absent or identical lm_head, and converts to float32. With a tokenizer (or 'architecture':
 * its architecture's), a model whose vocabulary cannot hold the tokenizer's ids is refused.
 */
export function loadCheckpoint(
  dir: string,
  options: { tokenizer?: Vocabulary | 'architecture' } = {},
): LoadedCheckpoint {
  const from = readableDir(path.resolve(dir));
  const configFile = path.join(from, FILES.config);
  if (!fs.existsSync(configFile))
    throw new Error(`${from}: no ${FILES.config}, so it is not a model folder (${MODEL_FOLDER})`);
  const json = readJsonObjectFile(configFile);
  const declared = withoutDtypeKeys(configFromHF(json, configFile));
  const { tokenizer } = options;
  if (tokenizer)
    checkVocabSize(
      declared.config,
      tokenizer === 'architecture' ? tokenizerFor(declared.config) : tokenizer,
      configFile,
    );
  const generation = readGenerationConfig(from, json);
  const weights = readWeights(from);
  const dtype = modelDtype(json, weights);
  const tensors = importTensors(weights.tensors, declared.config, weights.file);
  const head = declared.head ?? headOf(tensors);
  const config = head === 'lm' ? resolveLmHead(declared.config, tensors, weights.file) : declared.config;
  const expected = expectedShapes(config, head, tensors);
  checkParams(tensors, expected, weights.file);
  checkFinite(tensors, weights.file);
  const params = new Map([...expected.keys()].map((name) => [name, tensors.get(name)!]));
  return { config, head, params, dtype, source: from, generation, ...readTrainingState(from, params) };
}

/** trainer_state.json and optimizer.safetensors, when the folder has them; the moments are of `params`. */
export function readTrainingState(
  from: string,
  params: Map<string, NamedTensor>,
): Pick<CheckpointContents, 'trainerState' | 'optimizerState'> {
  const stateFile = path.join(from, FILES.trainerState);
  const optimizerFile = path.join(from, FILES.optimizer);
  const state: Pick<CheckpointContents, 'trainerState' | 'optimizerState'> = {};
  let optimizerStep: unknown;
  if (fs.existsSync(stateFile)) {
    const { [OPTIMIZER_STEP]: step, ...trainerState } = readJsonObjectFile(stateFile);
    state.trainerState = trainerState;
    optimizerStep = step;
  }
  if (fs.existsSync(optimizerFile)) state.optimizerState = readOptimizerState(optimizerFile, optimizerStep, params);
  return state;
}

/** The dtype a file's header code stores floats in. */
const STORED_AS: Record<string, FloatDType> = { F32: 'float32', F64: 'float32', BF16: 'bfloat16', F16: 'float16' };

/**
 * A loaded model's dtype: config.json's torch_dtype (or transformers' newer "dtype") when it names
 * one of ours, as from_pretrained(torch_dtype="auto") reads it, else the dtype most weights are stored in.
 */
function modelDtype(json: Record<string, unknown>, weights: Pick<StoredWeights, 'tensors' | 'stored'>): FloatDType {
  const declared = json.torch_dtype ?? json.dtype;
  if (FLOAT_DTYPES.includes(declared as FloatDType)) return declared as FloatDType;
  const counts = new Map<FloatDType, number>();
  for (const [name, t] of weights.tensors) {
    const dtype = STORED_AS[weights.stored.get(name)!];
    if (dtype) counts.set(dtype, (counts.get(dtype) ?? 0) + t.data.length);
  }
  return [...counts].reduce((best, c) => (c[1] > best[1] ? c : best), ['float32', 0] as [FloatDType, number])[0];
}

/** The loaded checkpoint's dtype stands for config.json's dtype keys, which a save writes anew. */
function withoutDtypeKeys<T extends { config: ModelConfig }>(declared: T): T {
  const { torch_dtype: _, dtype: __, ...extra } = declared.config.hfExtra ?? {};
  const { hfExtra: ___, ...config } = declared.config;
  return { ...declared, config: Object.keys(extra).length ? { ...config, hfExtra: extra } : config };
}

function headOf(params: Map<string, unknown>): Head {
  return params.has('score.weight') ? 'score' : 'lm';
}

/** The shapes of what an adapter trains on a model: its LoRA matrices and saved modules. */
function adapterShapes(adapter: LoraAdapter, config: ModelConfig, head: Head): Map<string, number[]> {
  const all = paramShapes(config, { head });
  return new Map(trainedNames(adapter).map((n) => [n, adapter.weights.get(n)?.shape ?? all.get(n)!]));
}

function expectedShapes(config: ModelConfig, head: Head, params: Map<string, unknown>): Map<string, number[]> {
  return paramShapes(config, { head, scoreBias: params.has('score.bias') });
}

/** Every expected tensor present, float32, with its shape; nothing else. Errors name `where`. */
function checkParams(params: Map<string, NamedTensor>, expected: Map<string, number[]>, where: string): void {
  for (const [name, shape] of expected) {
    const t = params.get(name);
    if (!t) throw new Error(`${where}: missing tensor "${name}" (expected shape [${shape}])`);
    checkTensor(name, t, shape, where);
  }
  const extra = [...params.keys()].filter((name) => !expected.has(name));
  if (extra.length > 0) {
    const listed =
      extra
        .slice(0, 5)
        .map((n) => `"${n}"`)
        .join(', ') + (extra.length > 5 ? `, ... (${extra.length} in all)` : '');
    throw new Error(`${where}: unexpected tensors ${listed}`);
  }
}

function checkTensor(name: string, t: NamedTensor, shape: readonly number[], where: string): void {
  if (t.dtype !== 'float32') throw new Error(`${where}: tensor "${name}" is ${t.dtype}, expected float32`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${where}: tensor "${name}" has shape [${t.shape}], expected [${shape}]`);
  }
}

/** Throws NonFiniteParamsError at the first NaN or ±Infinity, found in one pass over each tensor. */
export function checkFinite(params: Map<string, NamedTensor>, where: string): void {
  for (const [name, t] of params) {
    const data = t.data as Float32Array;
    const n = data.length;
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(data[i])) throw new NonFiniteParamsError(where, name, data[i]);
    }
  }
}

/** A 16-bit `dtype` must hold every weight: saved, a larger one would become infinity. */
function checkRepresentable(params: Map<string, NamedTensor>, dtype: FloatDType, where: string): void {
  if (dtype === 'float32') return;
  const overflow = OVERFLOW[dtype];
  for (const [name, t] of params) {
    const data = t.data as Float32Array;
    for (let i = 0; i < data.length; i++) {
      if (Math.abs(data[i]) < overflow) continue;
      const wider = dtype === 'float16' ? 'bfloat16 or float32' : 'float32';
      throw new Error(
        `${where}: tensor "${name}" holds ${data[i]}, beyond ${dtype}'s range (±${LARGEST[dtype]}); save the model in ${wider} (torch_dtype)`,
      );
    }
  }
}

/** Each moment names a parameter and matches its shape; both moments cover the same parameters. */
function checkOptimizerState(opt: OptimizerState, params: Map<string, NamedTensor>, where: string): void {
  if (!Number.isSafeInteger(opt.step) || opt.step < 0) {
    throw new Error(`${where}: optimizer step must be a non-negative integer, got ${opt.step}`);
  }
  for (const [kind, prefix] of Object.entries(MOMENTS) as [keyof typeof MOMENTS, string][]) {
    for (const [name, t] of opt[kind]) {
      const param = params.get(name);
      if (!param) throw new Error(`${where}: optimizer tensor "${prefix}${name}" has no parameter "${name}"`);
      checkTensor(prefix + name, t, param.shape, where);
    }
  }
  for (const name of new Set([...opt.expAvg.keys(), ...opt.expAvgSq.keys()])) {
    if (!opt.expAvg.has(name) || !opt.expAvgSq.has(name)) {
      throw new Error(`${where}: optimizer state for "${name}" needs both exp_avg and exp_avg_sq`);
    }
  }
}

// Hugging Face saves the transformer trunk under a prefix ("transformer." for GPT-2) beside the
// head; without it, transformers refuses a file that also holds lm_head.weight or score.weight.
function hfNames(params: Map<string, NamedTensor>, config: ModelConfig): Map<string, NamedTensor> {
  return new Map([...params].map(([name, t]) => [hfName(config, name), t]));
}

/** Our names for a file's tensors, as float32, without the buffers that are not parameters. */
function importTensors(tensors: Map<string, NamedTensor>, config: ModelConfig, file: string): Map<string, NamedTensor> {
  const { trunkPrefix, buffers } = architectureOf(config).checkpoint;
  const out = new Map<string, NamedTensor>();
  for (const [fileName, t] of tensors) {
    const name = fileName.startsWith(trunkPrefix) ? fileName.slice(trunkPrefix.length) : fileName;
    if (buffers.test(name)) continue;
    if (out.has(name))
      throw new Error(`${file}: tensor "${name}" appears both with and without the "${trunkPrefix}" prefix`);
    out.set(name, toFloat32(fileName, t, file));
  }
  return out;
}

function toFloat32(name: string, t: NamedTensor, file: string): NamedTensor {
  if (t.dtype === 'float32') return t;
  if (t.dtype === 'float64')
    return { dtype: 'float32', shape: t.shape, data: Float32Array.from(t.data as Float64Array) };
  throw new Error(`${file}: tensor "${name}" is ${t.dtype}; weights must be floating point`);
}

/** A separate lm_head equal to the token embedding is really a tied one: drop it. One that differs unties the head. */
function resolveLmHead(config: ModelConfig, tensors: Map<string, NamedTensor>, file: string): ModelConfig {
  const lmHead = tensors.get('lm_head.weight');
  if (!lmHead) {
    if (!config.tiedHead)
      throw new Error(`${file}: config.json sets tie_word_embeddings false, but there is no "lm_head.weight"`);
    return config;
  }
  const embedding = tensors.get(architectureOf(config).embedding);
  if (embedding && sameBytes(lmHead, embedding)) {
    tensors.delete('lm_head.weight');
    return { ...config, tiedHead: true };
  }
  return { ...config, tiedHead: false };
}

function sameBytes(a: NamedTensor, b: NamedTensor): boolean {
  const bytes = (t: NamedTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return a.shape.join() === b.shape.join() && bytes(a).equals(bytes(b));
}

function momentTensors(opt: OptimizerState): Map<string, NamedTensor> {
  const tensors = new Map<string, NamedTensor>();
  for (const [kind, prefix] of Object.entries(MOMENTS) as [keyof typeof MOMENTS, string][]) {
    for (const [name, t] of opt[kind]) tensors.set(prefix + name, t);
  }
  return tensors;
}

function readOptimizerState(file: string, step: unknown, params: Map<string, NamedTensor>): OptimizerState {
  if (step === undefined) throw new Error(`${file}: trainer_state.json beside it has no "${OPTIMIZER_STEP}"`);
  const opt: OptimizerState = { step: step as number, expAvg: new Map(), expAvgSq: new Map() };
  for (const [name, t] of readSafetensors(file).tensors) {
    // "exp_avg." is not a prefix of "exp_avg_sq.", so at most one kind matches.
    const kind = (Object.keys(MOMENTS) as (keyof typeof MOMENTS)[]).find((k) => name.startsWith(MOMENTS[k]));
    if (!kind) throw new Error(`${file}: tensor "${name}" is neither exp_avg.<param> nor exp_avg_sq.<param>`);
    opt[kind].set(name.slice(MOMENTS[kind].length), toFloat32(name, t, file));
  }
  checkOptimizerState(opt, params, file);
  return opt;
}

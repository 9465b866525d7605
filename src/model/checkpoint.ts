/**
 * Checkpoints: directories a PyTorch user can open with Hugging Face transformers.
 *
 *   config.json            Hugging Face's config keys for the model's architecture
 *   model.safetensors      parameters under Hugging Face's names
 *   trainer_state.json     optional: whatever the trainer saves (step, rng, metrics...), plus optimizer_step
 *   optimizer.safetensors  optional: AdamW moments, "exp_avg.<param>" and "exp_avg_sq.<param>"
 *
 * A stage that trains several models saves them as one checkpoint of model folders (PPO's
 * checkpoint-N/policy/ and checkpoint-N/value/). A save replaces the whole directory at once: it
 * is written beside the target as "<dir>.partial", then swapped in by renames, with the old one
 * parked as "<dir>.previous" until the new one is in place. A crash at any moment leaves a
 * complete checkpoint to load. Parameters that are not finite are never saved, nor loaded.
 */
import * as fs from 'fs';
import * as path from 'path';
import { architectureOf } from './architecture';
import { CHECKPOINT_FILES as FILES, sidePaths } from './checkpoint-layout';
import { checkVocabSize, configFromHF, configToHF, Head, ModelConfig, validateConfig, Vocabulary } from './config';
import { paramShapes, tokenizerFor } from './decoder';
import { NamedTensor, readSafetensors, writeSafetensors } from './safetensors';
import { syncDir, writeFileAtomic } from '../util/files';
import { isPlainObject } from '../util/objects';

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
}

export interface LoadedCheckpoint extends CheckpointContents {
  head: Head;
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
    super(`${where}: tensor "${tensor}" holds ${value}; the weights are not finite (the training that made them diverged)`);
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
  checkParams(ckpt.params, expectedShapes(ckpt.config, head, ckpt.params), where);
  checkFinite(ckpt.params, where);
  if (ckpt.optimizerState) checkOptimizerState(ckpt.optimizerState, ckpt.params, where);
  if (ckpt.trainerState && OPTIMIZER_STEP in ckpt.trainerState) {
    throw new Error(`${where}: trainerState may not use the reserved key "${OPTIMIZER_STEP}"`);
  }
}

/** Writes `dir` whole: `write` fills "<dir>.partial", which is then swapped in. */
function saveFolder(dir: string, models: string[], write: (partial: string) => void): void {
  recoverInterruptedSave(dir);
  refuseToReplaceNonCheckpoint(dir, models);
  const { partial } = sidePaths(dir);
  fs.mkdirSync(partial, { recursive: true });
  write(partial);
  swapIn(partial, dir);
}

/** One model's files in a new folder. */
function writeContents(dir: string, ckpt: CheckpointContents): void {
  fs.mkdirSync(dir, { recursive: true });
  writeJson(path.join(dir, FILES.config), configToHF(ckpt.config, headOf(ckpt.params)));
  writeSafetensors(path.join(dir, FILES.model), hfNames(ckpt.params, ckpt.config), { format: 'pt' });
  const opt = ckpt.optimizerState;
  if (ckpt.trainerState || opt) {
    const state = { ...ckpt.trainerState, ...(opt ? { [OPTIMIZER_STEP]: opt.step } : {}) };
    writeJson(path.join(dir, FILES.trainerState), state);
  }
  if (opt) writeSafetensors(path.join(dir, FILES.optimizer), momentTensors(opt));
}

/** Thrown by loadCheckpoint when nothing is at the path (nor a save of it that was cut off). */
export class NoCheckpointError extends Error {}

/**
 * Loads one of our checkpoints or a Hugging Face directory of a supported architecture: strips the
 * trunk's prefix (GPT-2's "transformer."), drops buffers that are not parameters (causal masks),
 * ties an absent or identical lm_head, and converts to float32. With a tokenizer (or 'architecture':
 * its architecture's), a model whose vocabulary cannot hold the tokenizer's ids is refused.
 */
export function loadCheckpoint(dir: string, options: { tokenizer?: Vocabulary | 'architecture' } = {}): LoadedCheckpoint {
  const from = readableDir(path.resolve(dir));
  const configFile = path.join(from, FILES.config);
  const declared = configFromHF(readJson(configFile), configFile);
  const { tokenizer } = options;
  if (tokenizer) checkVocabSize(declared.config, tokenizer === 'architecture' ? tokenizerFor(declared.config) : tokenizer, configFile);
  const modelFile = path.join(from, FILES.model);
  const tensors = importTensors(readSafetensors(modelFile).tensors, declared.config, modelFile);
  const head = declared.head ?? headOf(tensors);
  const config = head === 'lm' ? resolveLmHead(declared.config, tensors, modelFile) : declared.config;
  const expected = expectedShapes(config, head, tensors);
  checkParams(tensors, expected, modelFile);
  checkFinite(tensors, modelFile);
  const params = new Map([...expected.keys()].map((name) => [name, tensors.get(name)!]));

  const loaded: LoadedCheckpoint = { config, head, params };
  const stateFile = path.join(from, FILES.trainerState);
  const optimizerFile = path.join(from, FILES.optimizer);
  let optimizerStep: unknown;
  if (fs.existsSync(stateFile)) {
    const { [OPTIMIZER_STEP]: step, ...trainerState } = readJsonObject(stateFile);
    loaded.trainerState = trainerState;
    optimizerStep = step;
  }
  if (fs.existsSync(optimizerFile)) loaded.optimizerState = readOptimizerState(optimizerFile, optimizerStep, params);
  return loaded;
}

function headOf(params: Map<string, unknown>): Head {
  return params.has('score.weight') ? 'score' : 'lm';
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
    const listed = extra.slice(0, 5).map((n) => `"${n}"`).join(', ') + (extra.length > 5 ? `, ... (${extra.length} in all)` : '');
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
  const { trunkPrefix } = architectureOf(config).checkpoint;
  const isHead = (name: string) => name.startsWith('lm_head.') || name.startsWith('score.');
  return new Map([...params].map(([name, t]) => [isHead(name) ? name : trunkPrefix + name, t]));
}

/** Our names for a file's tensors, as float32, without the buffers that are not parameters. */
function importTensors(tensors: Map<string, NamedTensor>, config: ModelConfig, file: string): Map<string, NamedTensor> {
  const { trunkPrefix, buffers } = architectureOf(config).checkpoint;
  const out = new Map<string, NamedTensor>();
  for (const [fileName, t] of tensors) {
    const name = fileName.startsWith(trunkPrefix) ? fileName.slice(trunkPrefix.length) : fileName;
    if (buffers.test(name)) continue;
    if (out.has(name)) throw new Error(`${file}: tensor "${name}" appears both with and without the "${trunkPrefix}" prefix`);
    out.set(name, toFloat32(fileName, t, file));
  }
  return out;
}

function toFloat32(name: string, t: NamedTensor, file: string): NamedTensor {
  if (t.dtype === 'float32') return t;
  if (t.dtype === 'float64') return { dtype: 'float32', shape: t.shape, data: Float32Array.from(t.data as Float64Array) };
  throw new Error(`${file}: tensor "${name}" is ${t.dtype}; weights must be floating point`);
}

/** A separate lm_head equal to the token embedding is really a tied one: drop it. One that differs unties the head. */
function resolveLmHead(config: ModelConfig, tensors: Map<string, NamedTensor>, file: string): ModelConfig {
  const lmHead = tensors.get('lm_head.weight');
  if (!lmHead) {
    if (!config.tiedHead) throw new Error(`${file}: config.json sets tie_word_embeddings false, but there is no "lm_head.weight"`);
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

function writeJson(file: string, value: unknown): void {
  writeFileAtomic(file, [Buffer.from(JSON.stringify(value, null, 2) + '\n', 'utf8')]);
}

function readJson(file: string): unknown {
  const text = fs.readFileSync(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

function readJsonObject(file: string): Record<string, unknown> {
  const value = readJson(file);
  if (!isPlainObject(value)) throw new Error(`${file}: must be a JSON object`);
  return value;
}

/** The swap: park the old checkpoint, rename the new one in, then delete the old. */
function swapIn(partial: string, dir: string): void {
  const { previous } = sidePaths(dir);
  const hadOld = fs.existsSync(dir);
  if (hadOld) fs.renameSync(dir, previous);
  fs.renameSync(partial, dir);
  syncDir(path.dirname(dir));
  if (hadOld) fs.rmSync(previous, { recursive: true, force: true });
}

/**
 * Cleans up after a save that crashed. If `dir` is gone but "<dir>.previous" exists, the crash
 * came between swapIn's renames, when "<dir>.partial" was already complete: finish the swap.
 * Any other leftover partial is incomplete and any leftover previous is superseded.
 */
function recoverInterruptedSave(dir: string): void {
  const { partial, previous } = sidePaths(dir);
  if (!fs.existsSync(dir) && fs.existsSync(previous)) {
    fs.renameSync(fs.existsSync(partial) ? partial : previous, dir);
  }
  fs.rmSync(partial, { recursive: true, force: true });
  fs.rmSync(previous, { recursive: true, force: true });
}

/** Where to read `dir` from, following recoverInterruptedSave's rules without changing the disk. */
function readableDir(dir: string): string {
  if (fs.existsSync(dir)) {
    if (fs.statSync(dir).isDirectory()) return dir;
    throw new Error(`${dir} is a file, not a model folder (a model folder holds ${FILES.config} and ${FILES.model})`);
  }
  const { partial, previous } = sidePaths(dir);
  if (fs.existsSync(previous)) return fs.existsSync(partial) ? partial : previous;
  throw new NoCheckpointError(`no checkpoint at ${dir}`);
}

/**
 * A save deletes what was at `dir`; make sure that is an old checkpoint and not someone's files:
 * a model folder, or for several `models`, a folder of nothing but their folders (and their
 * saves cut off).
 */
function refuseToReplaceNonCheckpoint(dir: string, models: string[]): void {
  if (!fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory()) throw new Error(`saveCheckpoint: ${dir} exists and is not a directory`);
  const why = notACheckpoint(fs.readdirSync(dir), models);
  if (why) throw new Error(`saveCheckpoint: ${dir} is not a checkpoint (${why}); refusing to replace it`);
}

/** Why a folder holding `entries` is not a checkpoint of `models`, if it is not. */
function notACheckpoint(entries: string[], models: string[]): string | undefined {
  if (!models.length) return entries.length > 0 && !entries.includes(FILES.config) ? `no ${FILES.config}` : undefined;
  const stranger = entries.find((entry) => !models.includes(entry.replace(/\.(partial|previous)$/, '')));
  return stranger && `it holds "${stranger}"`;
}

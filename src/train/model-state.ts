/**
 * Getting a model's weights into engine State and back out: from a preset (fresh init) or a
 * checkpoint directory, to a checkpoint directory. Shared by every stage.
 */
import { State } from '../engine/state';
import {
  CheckpointContents,
  loadCheckpoint,
  LoadedCheckpoint,
  NoCheckpointError,
  OptimizerState,
  TrainerState,
} from '../model/checkpoint';
import {
  Head,
  ModelConfig,
  PRESETS,
  checkVocabSize,
  presetConfig,
  resizeConfig,
  validateConfig,
} from '../model/config';
import { initParams, tokenizerFor } from '../model/decoder';
import { folderTokenizer } from '../model/hf-tokenizer';
import { FloatDType, NamedTensor } from '../model/safetensors';
import { Tokenizer } from '../model/tokenizer';
import { checkWeightsFit } from './memory';
import { isAdapterFolder } from '../model/adapter-files';
import { LoraAdapter } from '../model/lora';
import { loadAdapterFolder } from './adapters';
import { Rng } from '../util/rng';

export interface ModelSize {
  n_layer?: number;
  n_head?: number;
  n_embd?: number;
  n_positions?: number;
}

export interface LoadedModel {
  config: ModelConfig;
  head: Head;
  params: Map<string, NamedTensor>;
  /** The model folder's own tokenizer (its tokenizer.json), else its architecture's. */
  tokenizer: Tokenizer;
  /** Present when the model came from a checkpoint directory. */
  checkpoint?: LoadedCheckpoint;
  /** The folder it came from, whose tokenizer and generation files its saves copy; none for a preset. */
  source?: string;
  /**
   * Its dtype, which saves keep unless the experiment's torch_dtype says otherwise: its checkpoint's,
   * float32 for a preset.
   */
  dtype: FloatDType;
  /** An adapter folder's adapter: `params` are then its base's (with its saved modules in place). */
  adapter?: LoraAdapter;
}

export function isPreset(spec: string): boolean {
  return Object.hasOwn(PRESETS, spec);
}

/**
 * A preset (freshly initialised from `seed`, with optional size overrides) or a checkpoint directory,
 * whose vocabulary must hold the ids of its tokenizer, which every stage feeds it with.
 */
export function loadModel(spec: string, seed: number, size: ModelSize = {}): LoadedModel {
  if (!isPreset(spec)) return loadNamedFolder(spec);
  const config = resizeConfig(presetConfig(spec), {
    nLayer: size.n_layer,
    nHead: size.n_head,
    nEmbd: size.n_embd,
    nPositions: size.n_positions,
  });
  validateConfig(config, `model "${spec}"`);
  checkVocabSize(config, tokenizerFor(config), `model "${spec}"`);
  checkWeightsFit(Object.keys(size).length > 0 ? 'model_size' : `model "${spec}"`, config);
  return {
    config,
    head: 'lm',
    params: initParams(config, new Rng(seed)),
    tokenizer: tokenizerFor(config),
    dtype: 'float32',
  };
}

/**
 * A checkpoint directory with its tokenizer: the folder's tokenizer.json when it has one, else its
 * architecture's. A PEFT adapter folder loads as its base with the adapter beside (./adapters.ts).
 */
export function loadModelFolder(dir: string): LoadedModel {
  if (isAdapterFolder(dir)) return loadAdapterFolder(dir, loadModelFolder);
  const own = folderTokenizer(dir);
  const checkpoint = loadCheckpoint(dir, { tokenizer: own ?? 'architecture' });
  const { config, head, params, source, dtype } = checkpoint;
  return {
    config,
    head,
    params,
    checkpoint,
    tokenizer: stoppingAt(own ?? tokenizerFor(config), checkpoint.generation.eosTokenIds),
    source,
    dtype,
  };
}

/** `tokenizer`, ending generations also at `eosIds` (a generation config's, which may list several). */
function stoppingAt(tokenizer: Tokenizer, eosIds: number[]): Tokenizer {
  const stopIds = [...new Set([...tokenizer.stopIds, ...eosIds])];
  return stopIds.length === tokenizer.stopIds.length ? tokenizer : { ...tokenizer, stopIds };
}

function loadNamedFolder(spec: string): LoadedModel {
  try {
    return loadModelFolder(spec);
  } catch (e) {
    if (!(e instanceof NoCheckpointError)) throw e;
    throw new Error(`model "${spec}" is neither a preset (${Object.keys(PRESETS).join(', ')}) nor a checkpoint folder`);
  }
}

/** Puts named float32 tensors into the state. */
export function putTensors(state: State, tensors: Map<string, NamedTensor>, prefix = ''): void {
  for (const [name, t] of tensors) state.setHost(prefix + name, t.data as Float32Array, t.shape);
}

/** Reads named tensors back from the state, shaped as `shapes` says. */
export async function readTensors(
  state: State,
  shapes: Map<string, number[]>,
  prefix = '',
): Promise<Map<string, NamedTensor>> {
  const names = [...shapes.keys()];
  const data = await state.read(names.map((n) => prefix + n));
  return new Map(
    names.map((n) => [n, { dtype: 'float32', shape: shapes.get(n)!, data: data.get(prefix + n) as Float32Array }]),
  );
}

/**
 * The model in `state` as checkpoint contents (with AdamW's slots when `optimizerStep` is given): the
 * tensors of `shapes` (all its parameters, or what its adapter trains). `prefix` is the model's
 * name prefix in the state (PPO keeps several models in one).
 */
export async function modelContents(
  state: State,
  config: ModelConfig,
  shapes: Map<string, number[]>,
  trainerState: TrainerState,
  optimizerStep?: number,
  prefix = '',
): Promise<CheckpointContents> {
  const params = await readTensors(state, shapes, prefix);
  let optimizerState: OptimizerState | undefined;
  if (optimizerStep !== undefined) {
    optimizerState = {
      step: optimizerStep,
      expAvg: await readTensors(state, shapes, `exp_avg.${prefix}`),
      expAvgSq: await readTensors(state, shapes, `exp_avg_sq.${prefix}`),
    };
  }
  return { config, params, trainerState, optimizerState };
}

/** Restores AdamW's slots from a checkpoint into the state. */
export function putOptimizerState(state: State, opt: OptimizerState, prefix = ''): void {
  putTensors(state, opt.expAvg, `exp_avg.${prefix}`);
  putTensors(state, opt.expAvgSq, `exp_avg_sq.${prefix}`);
}

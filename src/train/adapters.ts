/**
 * LoRA adapters in the stages: an adapter folder loaded as its base with the adapter beside, the
 * model a stage trains (an adapter on a frozen base when its config has a `peft` section), and the
 * tensors a model slot trains and saves. A stage opts in by passing its `peft` section to
 * `trainedModel`; the Trainer does the rest (./trainer.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { readAdapterConfig, readAdapterTensors } from '../model/adapter-files';
import { ADAPTER_FILES, readableDir } from '../model/checkpoint-layout';
import { readTrainingState, saveCheckpoint } from '../model/checkpoint';
import { Head, ModelConfig } from '../model/config';
import { paramShapes } from '../model/decoder';
import {
  AdapterPlace,
  LoraAdapter,
  LoraConfig,
  mergeLora,
  newAdapter,
  resolveModules,
  savedParams,
  trainedNames,
} from '../model/lora';
import { NamedTensor } from '../model/safetensors';
import { Rng } from '../util/rng';
import type { LoadedModel } from './model-state';

/**
 * Where an adapter's base_model_name_or_path is: a path as written (absolute, or relative to the
 * working directory), else relative to the adapter folder.
 */
function baseFolder(baseModel: string, adapterDir: string, where: string): string {
  const beside = path.resolve(adapterDir, baseModel);
  if (fs.existsSync(path.resolve(baseModel))) return path.resolve(baseModel);
  if (fs.existsSync(beside)) return beside;
  throw new Error(
    `${where}: base_model_name_or_path "${baseModel}" is not a model folder here (nor beside the adapter); download the base model and point it there`,
  );
}

/**
 * An adapter folder as a model: its base (whose own adapter, if it is one, is merged in), the
 * base's head replaced by a score head for SEQ_CLS, the saved modules' weights in place, and the
 * adapter with its checkpoint's trainer and optimizer state.
 */
export function loadAdapterFolder(dir: string, loadFolder: (dir: string) => LoadedModel): LoadedModel {
  const from = readableDir(path.resolve(dir));
  const where = path.join(from, ADAPTER_FILES.config);
  const file = readAdapterConfig(from);
  const base = mergedModel(loadFolder(baseFolder(file.baseModel, from, where)));
  const { config } = base;
  const head = file.head;
  const modules = resolveModules(file.config, config, head, where);
  const saved = savedParams(file.config, config, head, where);
  const shapes = paramShapes(config, { head });
  const spec = { config: file.config, baseModel: file.baseModel, modules, saved };
  const tensors = readAdapterTensors(from, spec, config, shapes);
  const params = new Map<string, NamedTensor>();
  for (const name of shapes.keys()) {
    const t = tensors.get(name) ?? base.params.get(name);
    if (!t) throw new Error(`${where}: the base ${file.baseModel} has no "${name}", and the adapter does not save it`);
    params.set(name, t);
  }
  const adapter: LoraAdapter = { ...spec, weights: new Map([...tensors].filter(([n]) => !saved.includes(n))) };
  const generation = base.checkpoint?.generation ?? { eosTokenIds: [] };
  const checkpoint = { config, head, params: tensors, dtype: base.dtype, source: from, generation };
  return {
    ...base,
    head,
    params,
    adapter,
    source: from,
    checkpoint: { ...checkpoint, ...readTrainingState(from, tensors) },
  };
}

/** The model with its adapter folded into the base's weights (PEFT's merge_and_unload); as it is without one. */
export function mergedModel(m: LoadedModel): LoadedModel {
  if (!m.adapter) return m;
  return { ...m, params: mergeLora(m.params, m.adapter), adapter: undefined, checkpoint: undefined };
}

/**
 * The model a stage trains. With its `peft` section: an adapter on the model, frozen: the model's
 * own when it is an adapter folder (continued, with its settings), else a fresh one of `peft`,
 * whose base is the model's folder (a preset's drawn weights are saved once as `<outputDir>/base`).
 * Without: the whole model, with any adapter merged in. Errors start with `where`.
 */
export function trainedModel(
  m: LoadedModel,
  peft: LoraConfig | undefined,
  o: { seed: number; outputDir: string; where: string },
): LoadedModel {
  if (!peft) return mergedModel(m);
  if (m.adapter)
    return { ...m, adapter: { ...m.adapter, saved: savedParams(m.adapter.config, m.config, m.head, o.where) } };
  const base = m.source ?? savePresetBase(m, path.join(o.outputDir, 'base'));
  return { ...m, adapter: newAdapter(peft, m.config, m.head, base, new Rng(o.seed), o.where) };
}

/** Whether an adapted model's adapter was made for the base folder `base`. */
export function isOnBase(m: LoadedModel, base: string): boolean {
  return path.resolve(m.adapter!.baseModel) === path.resolve(base);
}

/**
 * An adapted model beside another that holds the base `base` under `basePrefix` (a frozen
 * reference): on that base, it keeps only what it trains (its saved modules; the adapter's weights
 * join its slot anyway) and reads the base there; on another base, it keeps that base too.
 */
export function placeOnBase(
  m: LoadedModel,
  base: string,
  basePrefix: string,
): { params: Map<string, NamedTensor>; place: AdapterPlace } {
  const adapter = m.adapter!;
  if (!isOnBase(m, base)) return { params: m.params, place: { adapter } };
  return { params: new Map(adapter.saved.map((n) => [n, m.params.get(n)!])), place: { adapter, basePrefix } };
}

/** A preset's drawn weights as a model folder, for its adapters to name as their base. */
function savePresetBase(m: LoadedModel, dir: string): string {
  saveCheckpoint(dir, { config: m.config, params: m.params });
  return dir;
}

/** The tensors a model trains and saves, with their shapes: all its parameters, or what its adapter trains. */
export function trainedShapes(m: { config: ModelConfig; head: Head; adapter?: LoraAdapter }): Map<string, number[]> {
  const all = paramShapes(m.config, { head: m.head });
  if (!m.adapter) return all;
  const { adapter } = m;
  return new Map(trainedNames(adapter).map((n) => [n, adapter.weights.get(n)?.shape ?? all.get(n)!]));
}

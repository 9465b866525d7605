/**
 * LoRA (Hu et al., 2021) as PEFT computes it: a projection W of a frozen model gains a trained
 * low-rank path, y = x Wᵀ + scaling · x Aᵀ Bᵀ, with A [r, in] and B [out, r] whatever the layout of W
 * (GPT-2's Conv1D stores W as [in, out]: PEFT's fan_in_fan_out), scaling = lora_alpha / r (or
 * lora_alpha / sqrt(r) with rsLoRA). A starts kaiming-uniform (a = sqrt(5)), B at zero, so a fresh
 * adapter leaves the model's outputs as they were. Modules in modules_to_save train in full.
 * Names are PEFT's: "<module>.lora_A.weight", "<module>.lora_B.weight" beside "<module>.weight".
 */
import { Tensor, input, scalar } from '../engine/tensor';
import { Rng } from '../util/rng';
import type { ParamSpec, Params } from './architecture';
import { loraA, loraB, loraScalingKey } from './blocks';
import type { Head, ModelConfig } from './config';
import { hfName, initTensors, paramInputs, paramSpecs } from './decoder';
import type { NamedTensor } from './safetensors';

/** An adapter's settings, under PEFT's LoraConfig names. */
export interface LoraConfig {
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  /** Module names matched as PEFT does (equal, or a suffix after a "."), a regex matched in full, or "all-linear". */
  target_modules: string[] | string;
  /** Modules trained in full and saved with the adapter (a reward model's "score"). */
  modules_to_save: string[];
  use_rslora: boolean;
}

/** A projection the adapter adapts: its module name (ours), widths and weight layout. */
export interface LoraModule {
  name: string;
  nIn: number;
  nOut: number;
  /** "conv1d": the weight is [in, out] (GPT-2); "linear": [out, in] (torch.nn.Linear). */
  layout: 'linear' | 'conv1d';
}

/** An adapter on a model: its settings, what it adapts, its weights, and the base it was made for. */
export interface LoraAdapter {
  config: LoraConfig;
  /** base_model_name_or_path: the folder (or Hub id) of the weights it adapts. */
  baseModel: string;
  modules: LoraModule[];
  /** The base's parameters that train in full (modules_to_save), by name. */
  saved: string[];
  /** lora_A and lora_B of every module, float32. */
  weights: Map<string, NamedTensor>;
}

/** lora_alpha / r, or with rsLoRA lora_alpha / sqrt(r). */
export function loraScaling(c: Pick<LoraConfig, 'r' | 'lora_alpha' | 'use_rslora'>): number {
  return c.use_rslora ? c.lora_alpha / Math.sqrt(c.r) : c.lora_alpha / c.r;
}

/** The model's projections an adapter can adapt (the trunk's, not the output head), in checkpoint order. */
export function projectionModules(cfg: ModelConfig, head: Head): LoraModule[] {
  return paramSpecs(cfg, { head }).flatMap((s) => {
    if (!s.layout) return [];
    const [a, b] = s.shape;
    const name = s.name.slice(0, -'.weight'.length);
    return [
      s.layout === 'conv1d' ? { name, nIn: a, nOut: b, layout: s.layout } : { name, nIn: b, nOut: a, layout: s.layout },
    ];
  });
}

/** Whether PEFT's target_modules select the module of HF name `key`. */
function targets(target: string[] | string, key: string): boolean {
  if (typeof target === 'string') return new RegExp(`^(?:${target})$`).test(key);
  return target.some((t) => key === t || key.endsWith(`.${t}`));
}

/** Module names distinct by their last part, for messages. */
function shortNames(names: string[]): string {
  return [...new Set(names.map((n) => n.split('.').pop()!))].join(', ');
}

/**
 * The modules `c` adapts on a model; errors start with `where` and name the field: a target list that
 * matches nothing lists the model's projections, r must be a positive integer.
 */
export function resolveModules(c: LoraConfig, cfg: ModelConfig, head: Head, where: string): LoraModule[] {
  if (!Number.isInteger(c.r) || c.r <= 0) throw new Error(`${where}: r must be a positive integer, got ${c.r}`);
  if (c.lora_dropout !== 0)
    throw new Error(`${where}: lora_dropout ${c.lora_dropout} is not supported (training has no dropout); use 0`);
  const all = projectionModules(cfg, head);
  const chosen =
    c.target_modules === 'all-linear' ? all : all.filter((m) => targets(c.target_modules, hfName(cfg, m.name)));
  if (!chosen.length) {
    const example = all.length ? ` (e.g. ${hfName(cfg, all[0].name)})` : '';
    throw new Error(
      `${where}: target_modules ${JSON.stringify(c.target_modules)} match no module of the model; its projections are ${shortNames(all.map((m) => m.name))}${example}, or "all-linear"`,
    );
  }
  return chosen;
}

/**
 * The parameters modules_to_save trains in full: each module whose name is the entry or ends with
 * "." + entry. A score head always trains, as PEFT adds "score" for sequence classification.
 */
export function savedParams(c: LoraConfig, cfg: ModelConfig, head: Head, where: string): string[] {
  const specs = paramSpecs(cfg, { head });
  const modules = head === 'score' ? [...new Set([...c.modules_to_save, 'score'])] : c.modules_to_save;
  const moduleOf = (name: string) => name.slice(0, name.lastIndexOf('.'));
  for (const m of modules) {
    if (!specs.some((s) => targets([m], moduleOf(s.name))))
      throw new Error(
        `${where}: modules_to_save "${m}" names no module of the model; its modules are ${shortNames([...new Set(specs.map((s) => moduleOf(s.name)))])}`,
      );
  }
  return specs.filter((s) => targets(modules, moduleOf(s.name))).map((s) => s.name);
}

/** lora_A [r, in] and lora_B [out, r] of each module, initialised as PEFT does. */
export function loraParamSpecs(modules: LoraModule[], r: number): ParamSpec[] {
  return modules.flatMap((m) => [
    // kaiming_uniform_(a=sqrt(5)) on [r, in]: bound = sqrt(6 / ((1 + a²) · fan_in)) = 1 / sqrt(in).
    { name: loraA(m.name), shape: [r, m.nIn], init: { uniform: 1 / Math.sqrt(m.nIn) } },
    { name: loraB(m.name), shape: [m.nOut, r], init: 'zeros' },
  ]);
}

/**
 * The adapter's graph inputs (lora_A and lora_B of each module, preceded by `prefix`) and each
 * module's scaling as a constant, to put beside the base's parameters.
 */
export function loraInputs(adapter: LoraAdapter, prefix = ''): Params {
  const scaling = loraScaling(adapter.config);
  const p: Params = {};
  for (const m of adapter.modules) {
    for (const name of [loraA(m.name), loraB(m.name)]) {
      const t = adapter.weights.get(name)!;
      p[name] = input(prefix + name, 'float32', t.shape);
    }
    p[loraScalingKey(m.name)] = scalar(scaling);
  }
  return p;
}

/** A fresh adapter of `config` on a model, for the base `baseModel`; errors start with `where`. */
export function newAdapter(
  config: LoraConfig,
  cfg: ModelConfig,
  head: Head,
  baseModel: string,
  rng: Rng,
  where: string,
): LoraAdapter {
  const modules = resolveModules(config, cfg, head, where);
  const saved = savedParams(config, cfg, head, where);
  return { config, baseModel, modules, saved, weights: initTensors(loraParamSpecs(modules, config.r), rng) };
}

/** Where an adapted model's tensors are in a State: its own (adapter, saved modules) and its base's. */
export interface AdapterPlace {
  adapter: LoraAdapter;
  /** The prefix of the base's weights, which several models may share (PPO's reference); default the model's. */
  basePrefix?: string;
}

/**
 * A model's graph inputs, keyed by HF name: its parameters under `prefix`; with an adapter, the
 * base's under the place's basePrefix, the saved modules and the LoRA matrices under `prefix`.
 */
export function modelInputs(cfg: ModelConfig, head: Head, prefix = '', lora?: AdapterPlace): Params {
  if (!lora) return paramInputs(cfg, head, prefix);
  const p = paramInputs(cfg, head, lora.basePrefix ?? prefix);
  for (const name of lora.adapter.saved) p[name] = input(prefix + name, 'float32', p[name].shape);
  return { ...p, ...loraInputs(lora.adapter, prefix) };
}

/**
 * The models' inputs with one graph input per State tensor: models on a shared base read its tensors
 * through the same input. Changes the models' Params in place.
 */
export function sharedInputs(...models: Params[]): void {
  const byName = new Map<string, Tensor>();
  for (const p of models)
    for (const [key, t] of Object.entries(p)) {
      if (t.op !== 'Input') continue;
      const first = byName.get(t.name!);
      if (first) p[key] = first;
      else byName.set(t.name!, t);
    }
}

/** The inputs a training step updates: all of a model's, or with an adapter only what it trains. */
export function trainableInputs(p: Params, adapter?: LoraAdapter): Tensor[] {
  return adapter ? trainedNames(adapter).map((name) => p[name]) : Object.values(p);
}

/** The names of the tensors an adapter trains: its lora weights and the modules it saves. */
export function trainedNames(adapter: LoraAdapter): string[] {
  return [...adapter.weights.keys(), ...adapter.saved];
}

/**
 * The base's weights with the adapter folded in, W + scaling · B A (transposed for a Conv1D [in, out]
 * weight): the model PEFT's merge_and_unload gives. `params` is not changed.
 */
export function mergeLora(params: Map<string, NamedTensor>, adapter: LoraAdapter): Map<string, NamedTensor> {
  const out = new Map(params);
  const { r } = adapter.config;
  const scaling = loraScaling(adapter.config);
  for (const m of adapter.modules) {
    const name = `${m.name}.weight`;
    const w = Float32Array.from(params.get(name)!.data as Float32Array);
    const a = adapter.weights.get(loraA(m.name))!.data as Float32Array; // [r, in]
    const b = adapter.weights.get(loraB(m.name))!.data as Float32Array; // [out, r]
    const row = new Float32Array(m.nIn);
    for (let o = 0; o < m.nOut; o++) {
      row.fill(0);
      for (let k = 0; k < r; k++) {
        const bk = b[o * r + k] * scaling;
        if (bk === 0) continue;
        for (let i = 0; i < m.nIn; i++) row[i] += bk * a[k * m.nIn + i];
      }
      if (m.layout === 'linear') for (let i = 0; i < m.nIn; i++) w[o * m.nIn + i] += row[i];
      else for (let i = 0; i < m.nIn; i++) w[i * m.nOut + o] += row[i];
    }
    out.set(name, { ...params.get(name)!, data: w });
  }
  return out;
}

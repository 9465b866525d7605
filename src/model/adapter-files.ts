/**
 * An adapter folder as PEFT writes and reads it (PeftModel.from_pretrained):
 *
 *   adapter_config.json        LoraConfig's fields: peft_type "LORA", r, lora_alpha, target_modules, …,
 *                              base_model_name_or_path, task_type (CAUSAL_LM, or SEQ_CLS for a score head)
 *   adapter_model.safetensors  "base_model.model.<HF module>.lora_A.weight" / ".lora_B.weight" and the
 *                              modules_to_save's weights ("base_model.model.score.weight"), float32
 *
 * beside the trainer's files of a checkpoint (trainer_state.json, optimizer.safetensors) and the
 * base's tokenizer files.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ADAPTER_FILES } from './checkpoint-layout';
import type { Head, ModelConfig } from './config';
import { hfName } from './decoder';
import { loraA, loraB } from './blocks';
import { LoraAdapter, LoraConfig } from './lora';
import { NamedTensor, readSafetensors, writeSafetensors } from './safetensors';
import { isPlainObject } from '../util/objects';
import { readJsonObjectFile, writeJsonFile } from '../util/json-files';

/** PEFT's prefix of every tensor name in adapter_model.safetensors. */
const PEFT_PREFIX = 'base_model.model.';

export function isAdapterFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, ADAPTER_FILES.config));
}

/** PEFT's task_type for a model's head. */
const taskType = (head: Head) => (head === 'score' ? 'SEQ_CLS' : 'CAUSAL_LM');

/**
 * Writes adapter_config.json and adapter_model.safetensors into `dir`: the adapter's settings and
 * `tensors`, its lora matrices and saved modules' weights under our names.
 */
export function writeAdapter(
  dir: string,
  adapter: LoraAdapter,
  tensors: Map<string, NamedTensor>,
  cfg: ModelConfig,
  head: Head,
): void {
  const c = adapter.config;
  const all = c.target_modules === 'all-linear';
  writeJsonFile(path.join(dir, ADAPTER_FILES.config), {
    peft_type: 'LORA',
    task_type: taskType(head),
    base_model_name_or_path: adapter.baseModel,
    r: c.r,
    lora_alpha: c.lora_alpha,
    lora_dropout: c.lora_dropout,
    // PEFT saves "all-linear" as the modules it chose.
    target_modules: all ? [...new Set(adapter.modules.map((m) => m.name.split('.').pop()!))] : c.target_modules,
    modules_to_save: c.modules_to_save.length ? c.modules_to_save : null,
    use_rslora: c.use_rslora,
    fan_in_fan_out: adapter.modules.some((m) => m.layout === 'conv1d'),
    bias: 'none',
    init_lora_weights: true,
    inference_mode: true,
    use_dora: false,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  });
  const named = new Map([...tensors].map(([name, t]) => [PEFT_PREFIX + hfName(cfg, name), t]));
  writeSafetensors(path.join(dir, ADAPTER_FILES.model), named);
}

/** What adapter_config.json says: the settings, the base, and the head its task has. */
export interface AdapterConfigFile {
  config: LoraConfig;
  baseModel: string;
  head: Head;
}

/** Reads and checks adapter_config.json; errors name the file and the field. */
export function readAdapterConfig(dir: string): AdapterConfigFile {
  const file = path.join(dir, ADAPTER_FILES.config);
  const json = readJsonObjectFile(file);
  const bad = (field: string, why: string): never => {
    throw new Error(`${file}: ${field}: ${why}, got ${JSON.stringify(json[field])}`);
  };
  if (json.peft_type !== 'LORA') bad('peft_type', 'only "LORA" adapters load');
  if (
    json.task_type !== undefined &&
    json.task_type !== null &&
    !['CAUSAL_LM', 'SEQ_CLS'].includes(json.task_type as string)
  )
    bad('task_type', 'must be "CAUSAL_LM" or "SEQ_CLS"');
  if (typeof json.base_model_name_or_path !== 'string' || !json.base_model_name_or_path)
    bad('base_model_name_or_path', 'must name the base model');
  if (!Number.isInteger(json.r) || (json.r as number) <= 0) bad('r', 'must be a positive integer');
  if (typeof json.lora_alpha !== 'number') bad('lora_alpha', 'must be a number');
  const targets = json.target_modules;
  if (!(typeof targets === 'string' || (Array.isArray(targets) && targets.every((t) => typeof t === 'string'))))
    bad('target_modules', 'must be a module name list or a regex');
  const saved = json.modules_to_save ?? [];
  if (!Array.isArray(saved) || !saved.every((t) => typeof t === 'string')) bad('modules_to_save', 'must be a list');
  const off: [string, (v: unknown) => boolean][] = [
    ['bias', (v) => v === undefined || v === 'none'],
    ['use_dora', (v) => !v],
    ['layers_to_transform', (v) => v === undefined || v === null],
    ['rank_pattern', (v) => v === undefined || (isPlainObject(v) && !Object.keys(v).length)],
    ['alpha_pattern', (v) => v === undefined || (isPlainObject(v) && !Object.keys(v).length)],
  ];
  for (const [field, ok] of off) if (!ok(json[field])) bad(field, 'is not supported');
  return {
    config: {
      r: json.r as number,
      lora_alpha: json.lora_alpha as number,
      lora_dropout: 0,
      target_modules: targets as string[] | string,
      modules_to_save: saved as string[],
      use_rslora: json.use_rslora === true,
    },
    baseModel: json.base_model_name_or_path as string,
    head: json.task_type === 'SEQ_CLS' ? 'score' : 'lm',
  };
}

/**
 * adapter_model.safetensors under our names, checked against the base it is loaded on: every
 * tensor of `adapter`'s modules and saved weights present with the base's shapes. A shape that
 * differs means the adapter was made for another base, and the error says which.
 */
export function readAdapterTensors(
  dir: string,
  adapter: Pick<LoraAdapter, 'modules' | 'saved' | 'baseModel'> & { config: Pick<LoraConfig, 'r'> },
  cfg: ModelConfig,
  baseShapes: Map<string, number[]>,
): Map<string, NamedTensor> {
  const file = path.join(dir, ADAPTER_FILES.model);
  if (!fs.existsSync(file)) throw new Error(`${dir}: no ${ADAPTER_FILES.model} beside ${ADAPTER_FILES.config}`);
  const stored = readSafetensors(file).tensors;
  const expected = new Map<string, number[]>();
  const { r } = adapter.config;
  for (const m of adapter.modules) {
    expected.set(loraA(m.name), [r, m.nIn]);
    expected.set(loraB(m.name), [m.nOut, r]);
  }
  for (const name of adapter.saved) expected.set(name, baseShapes.get(name)!);
  const out = new Map<string, NamedTensor>();
  for (const [name, shape] of expected) {
    const key = PEFT_PREFIX + hfName(cfg, name);
    const t = stored.get(key);
    if (!t) throw new Error(`${file}: missing tensor "${key}" (the adapter's config names module ${name})`);
    if (t.dtype !== 'float32' && t.dtype !== 'float64')
      throw new Error(`${file}: tensor "${key}" is ${t.dtype}; adapters load in float32`);
    if (t.shape.join() !== shape.join())
      throw new Error(
        `${file}: tensor "${key}" has shape [${t.shape}], but the base ${adapter.baseModel} needs [${shape}]: the adapter was made for another base model`,
      );
    out.set(
      name,
      t.dtype === 'float32' ? t : { dtype: 'float32', shape: t.shape, data: Float32Array.from(t.data as Float64Array) },
    );
  }
  const extra = [...stored.keys()].filter((k) => ![...expected.keys()].some((n) => PEFT_PREFIX + hfName(cfg, n) === k));
  if (extra.length) throw new Error(`${file}: tensors the config does not explain: ${extra.slice(0, 5).join(', ')}`);
  return out;
}

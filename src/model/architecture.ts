/**
 * What a model family is to the rest of the code, in one place per family, registered under Hugging
 * Face's `model_type` (as LitGPT runs many families through one GPT class and a config per model):
 * its parameters (HF name, shape and initialisation, declared once), its forward pass, the shape
 * of its KV cache, its config.json, its checkpoint naming and its tokenizer. Trainers reach it
 * through ./decoder.ts, so a new family is a new entry here plus the blocks it needs.
 */
import type { Tensor } from '../engine/tensor';
import type { Head, ModelConfig } from './config';
import { gpt2 } from './gpt2';
import { llama, qwen2, qwen3 } from './llama';
import type { Tokenizer } from './tokenizer';

export type Params = Record<string, Tensor>;

/** Keys and values of one layer, [B, nKvHead, S, headDim]. */
export interface KV {
  key: Tensor;
  value: Tensor;
}

/** The standard inputs of a forward pass (./decoder.ts sequenceInputs). */
export interface ForwardInputs {
  /** Token ids [B, T], int32. */
  tokens: Tensor;
  /** Position ids [B, T], int32. */
  positions: Tensor;
  /** Additive attention bias [B, 1, T, S]: 0 where a query may look, -1e9 where it may not. */
  attnBias: Tensor;
  /**
   * Recompute each layer's activations in the backward pass instead of keeping them (TrainingArguments'
   * gradient_checkpointing): less memory for a second forward's time. Training graphs only: no KV is returned.
   */
  gradientCheckpointing?: boolean;
}

/** How a parameter starts out in a fresh model. */
export type Init = 'zeros' | 'ones' | { normal: number } | { uniform: number };

export interface ParamSpec {
  /** The Hugging Face name, without the checkpoint's trunk prefix. */
  name: string;
  shape: number[];
  init: Init;
  /** A projection's weight, which LoRA can adapt: [in, out] (GPT-2's Conv1D) or [out, in] (torch.nn.Linear). */
  layout?: 'conv1d' | 'linear';
}

/** Layers, key/value heads and head width of the KV cache. */
export interface KvShape {
  layers: number;
  nKvHead: number;
  headDim: number;
}

/** A family's config.json: what it reads and writes, and what it refuses. */
export interface HFConfigFormat {
  /** The `architectures` class of each head. */
  architectures: Record<Head, string>;
  /** Other `architectures` classes that load as a language model (e.g. the bare trunk). */
  lmAliases: string[];
  /** Hugging Face's own defaults, for keys a config.json leaves out. */
  defaults: Record<string, unknown>;
  /**
   * Settings that change the math in ways the forward does not implement: key → whether its value
   * is accepted (true), refused as "key = value is not supported" (false), or refused with a message
   * that names the field.
   */
  unsupported: Record<string, (value: unknown, json: Record<string, unknown>) => boolean | string>;
  /** Keys read() and write() handle; every other key is carried in hfExtra. */
  ownKeys: string[];
  /** The config's sizes from a config.json with the defaults filled in. */
  read(hf: Record<string, unknown>): Omit<ModelConfig, 'modelType' | 'hfExtra'>;
  write(config: ModelConfig): Record<string, unknown>;
}

/** How a family's safetensors files name tensors beyond the parameter names. */
export interface CheckpointNaming {
  /** Prefix of the trunk's tensors beside a head, e.g. "transformer." ("lm_head." and "score." have none). */
  trunkPrefix: string;
  /** Buffers some files carry that are not parameters (e.g. causal masks); dropped on load. */
  buffers: RegExp;
}

export interface Architecture {
  /** Hugging Face's model_type. */
  modelType: string;
  /** The trunk's parameters, in checkpoint order; ./decoder.ts adds the head's. */
  params(cfg: ModelConfig): ParamSpec[];
  /** The token embedding's name: also the LM head's weight [V, D] when the head is tied. */
  embedding: string;
  /** Final hidden states [B, T, D]; `present`: every layer's keys and values of the T positions, for a KV cache. */
  forward(p: Params, cfg: ModelConfig, inputs: ForwardInputs, past?: KV[]): { hidden: Tensor; present: KV[] };
  kvShape(cfg: ModelConfig): KvShape;
  /** The family's own rules on a config; errors start with `where`. */
  validate(cfg: ModelConfig, where: string): void;
  hf: HFConfigFormat;
  checkpoint: CheckpointNaming;
  /** The tokenizer of the family's presets. */
  tokenizer(): Tokenizer;
}

const REGISTRY = new Map<string, Architecture>([gpt2, llama, qwen2, qwen3].map((arch) => [arch.modelType, arch]));

/** Adds a family; its model_type must be new. */
export function registerArchitecture(arch: Architecture): void {
  if (REGISTRY.has(arch.modelType)) throw new Error(`model_type "${arch.modelType}" is already registered`);
  REGISTRY.set(arch.modelType, arch);
}

/** The family registered under `modelType`; errors start with `where` and list the supported types. */
export function architecture(modelType: unknown, where: string): Architecture {
  const arch = typeof modelType === 'string' ? REGISTRY.get(modelType) : undefined;
  if (!arch) {
    const known = [...REGISTRY.keys()].map((t) => JSON.stringify(t)).join(', ');
    throw new Error(`${where}: model_type ${JSON.stringify(modelType)} is not supported (supported: ${known})`);
  }
  return arch;
}

/** The family that computes a model of this config. */
export function architectureOf(cfg: ModelConfig): Architecture {
  return architecture(cfg.modelType, 'model config');
}

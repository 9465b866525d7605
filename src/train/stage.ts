/**
 * What a stage gives the training loop (./trainer.ts): its settings, its graph, its models (each
 * trained or frozen) and its data, as batches (offline stages) or as steps that make their own
 * (online stages).
 */
import * as ort from 'onnxruntime-node';
import { Tensor } from '../engine/tensor';
import { BatchSampler } from '../data/batch';
import { OptimizerState, TrainerState } from '../model/checkpoint';
import { Head, ModelConfig } from '../model/config';
import { FloatDType, NamedTensor } from '../model/safetensors';
import { EmitEvent, ExperimentStage } from '../protocol/runner';
import { Experiment } from '../experiment/config';
import { LoraAdapter } from '../model/lora';
import { LoadedModel } from './model-state';
import { SchedulerType } from './schedule';
/** The stage settings the loop reads (TRL names). */
export interface LoopSettings {
  /** Micro-batches per optimizer update, their gradients averaged (memory for a larger batch). */
  gradient_accumulation_steps: number;
  learning_rate: number;
  lr_scheduler_type: SchedulerType;
  warmup_steps: number;
  min_lr_ratio: number;
  weight_decay: number;
  max_grad_norm: number;
  logging_steps: number;
  save_steps: number;
  /** Steps between evaluations, for stages with held-out data. */
  eval_steps?: number;
}

export interface Batch {
  feeds: Record<string, ort.Tensor>;
  /** Its weight in eval averages: the tokens (SFT) or pairs (reward model) it is scored on. */
  weight: number;
  /** Real (not padding) tokens, for tokens_per_second. */
  tokens: number;
}

export interface StageGraph {
  loss: Tensor;
  params: Tensor[];
  /**
   * Scalars reported beside the loss, by TRL name; "min_…" and "max_…" ones keep a window's extreme,
   * the rest its mean.
   */
  metrics: Record<string, Tensor>;
  /** The loss and metrics as held-out batches are scored, when they are computed otherwise than for training. */
  evaluation?: { loss: Tensor; metrics: Record<string, Tensor> };
}

/** An offline stage's data. */
export interface StageData {
  /** Training micro-batch `index` (1-based; one per step without gradient accumulation). */
  batch(index: number): Batch;
  /** The held-out batches, when there is a held-out set. */
  evalBatches?: () => Iterable<Batch>;
  /** Training examples, for the epoch count. */
  size: number;
  /** Examples per micro-batch, for the epoch count. */
  batchSize: number;
}

/** What one step gave, for the log. */
export interface StepResult {
  /** Averaged over the logging window. */
  averaged?: Record<string, number>;
  /** The window's last value is logged. */
  latest?: Record<string, number>;
  /** Tokens processed, for tokens_per_second over the window. */
  tokens?: number;
}

/** A stage's steps: `step(k)` takes step k (1-based) and must depend only on the seed and k. */
export interface StepSource {
  step(at: number): Promise<StepResult>;
  evalBatches?: () => Iterable<Batch>;
  /** Keys a checkpoint's trainer_state.json holds beside the stage, step and seed. */
  trainerState?(): TrainerState;
}

/** A model the run holds in its State. */
export interface ModelSlot {
  /**
   * Its prefix in the State (name + "."), and its folder in a checkpoint of several models; "" for a
   * stage's only model.
   */
  name: string;
  config: ModelConfig;
  head: Head;
  params: Map<string, NamedTensor>;
  /** Frozen models (a reference) are neither updated nor saved. */
  trainable: boolean;
  /**
   * A LoRA adapter on the model (../model/lora.ts): its weights join `params` in the State, and it is
   * what trains and saves (as a PEFT adapter folder), with the saved modules; the base stays frozen.
   */
  adapter?: LoraAdapter;
  /** AdamW's moments, when resuming. */
  optimizerState?: OptimizerState;
  /** Where in the run directory the finished run saves it ("model" is what comes next reads). */
  finalDir?: string;
  /** The model folder it came from, whose tokenizer and generation files every save of it gets. */
  source?: string;
  /** Its dtype (the source's), which the finished run saves it in when the experiment's torch_dtype is "auto". */
  dtype?: FloatDType;
}

/** What a final save changes: keys of trainer_state.json, and a config in place of the (only) trained model's. */
export interface CheckpointExtras {
  trainerState?: TrainerState;
  config?: ModelConfig;
}

export interface TrainerSetup {
  stage: Exclude<ExperimentStage, 'comparisons'>;
  /** How messages name the stage. */
  title: string;
  experiment: Experiment;
  settings: LoopSettings;
  models: ModelSlot[];
  /** The last step. */
  totalSteps: number;
  /** Optimizer updates per step: 1 for an offline stage; PPO's epochs × mini-batches. */
  updatesPerStep?: number;
  /** How messages name a step ("step", PPO's "iteration"). */
  stepName?: string;
  /** The logged metric whose climb far above its start is warned of. */
  watchedLoss?: string;
  /** The checkpoint the run resumed from, and its trainer state (which gives the step). */
  resumed?: { from: string; trainerState?: TrainerState };
  graph: StageGraph;
  outputDir: string;
  emit: EmitEvent;
}

export function describeModel(cfg: ModelConfig): string {
  return `${cfg.nLayer} layers, d=${cfg.nEmbd}, ${cfg.nHead} heads, context ${cfg.nPositions}`;
}

/**
 * An offline stage's data: training batches of `batchSize` drawn by a BatchSampler (batch k a
 * function of the seed and k, so a resumed run sees the same ones), held-out batches in order.
 */
export function sampledData<T>(
  train: T[],
  evaluation: T[],
  batchSize: number,
  seed: number,
  make: (items: T[]) => Batch,
): StageData {
  const sampler = new BatchSampler(train, batchSize, seed);
  return {
    batch: (at) => make(sampler.batch(at - 1)),
    evalBatches: evaluation.length ? () => inBatches(evaluation, batchSize, make) : undefined,
    size: train.length,
    batchSize,
  };
}

/** `items` in consecutive batches of `size`, each made by `make`. */
function* inBatches<T>(items: readonly T[], size: number, make: (items: T[]) => Batch): Generator<Batch> {
  for (let i = 0; i < items.length; i += size) yield make(items.slice(i, i + size));
}

/**
 * The models of a stage that trains one: `model`, or its checkpoint's weights, moments and step when
 * resuming from it.
 */
export function oneModel(model: LoadedModel, resumeFrom?: string): Pick<TrainerSetup, 'models' | 'resumed'> {
  const checkpoint = resumeFrom ? model.checkpoint : undefined;
  const { config, head, params, source, dtype, adapter } = model;
  return {
    models: [
      {
        name: '',
        config,
        head,
        params,
        adapter,
        trainable: true,
        optimizerState: checkpoint?.optimizerState,
        finalDir: 'model',
        source,
        dtype,
      },
    ],
    resumed: resumeFrom ? { from: resumeFrom, trainerState: checkpoint?.trainerState } : undefined,
  };
}

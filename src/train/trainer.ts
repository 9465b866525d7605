/**
 * The training loop SFT and the reward model share: the model's weights in engine State, one step
 * graph (AdamW, gradient clipping, the learning rate fed from the schedule), metrics averaged over
 * logging windows into metrics.jsonl and events, periodic eval on held-out data, checkpoints, stop
 * after the current step, and resume to the same loss curve as an uninterrupted run (the stage
 * makes batch k a function of the seed and k).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { toOnnx } from '../engine/onnx';
import { adamw } from '../engine/optim';
import { Program, Runtime } from '../engine/runtime';
import { State, TrainStep, buildTrainGraph } from '../engine/step';
import { Tensor } from '../engine/tensor';
import { TrainerState, checkFinite, saveCheckpoint } from '../model/checkpoint';
import { ModelConfig } from '../model/config';
import { paramShapes } from '../model/decoder';
import { NamedTensor } from '../model/safetensors';
import { EmitEvent } from '../protocol/runner';
import { Experiment } from '../experiment/config';
import { MetricsLog } from './metrics-log';
import { DivergenceGuard, LossRise } from './divergence';
import { LoadedModel, modelContents, putOptimizerState, putTensors, readTensors } from './model-state';
import { SchedulerType, learningRate } from './schedule';

/** The stage settings the loop reads (TRL names). */
export interface LoopSettings {
  per_device_train_batch_size: number;
  /** Micro-batches per optimizer step, their gradients averaged (memory for a larger batch). */
  gradient_accumulation_steps: number;
  learning_rate: number;
  lr_scheduler_type: SchedulerType;
  warmup_steps: number;
  min_lr_ratio: number;
  max_steps: number;
  weight_decay: number;
  max_grad_norm: number;
  logging_steps: number;
  eval_steps: number;
  save_steps: number;
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
  /** Scalars reported beside the loss, by TRL name; "min_…" and "max_…" ones keep a window's extreme, the rest its mean. */
  metrics: Record<string, Tensor>;
}

export interface StageData {
  /** Training micro-batch `index` (1-based; one per step without gradient accumulation). */
  batch(index: number): Batch;
  /** The held-out batches, when there is a held-out set. */
  evalBatches?: () => Iterable<Batch>;
  /** Training examples, for the epoch count. */
  size: number;
}

/** What a checkpoint adds to the model: keys of trainer_state.json, and a config in place of the model's. */
export interface CheckpointExtras {
  trainerState?: TrainerState;
  config?: ModelConfig;
}

export interface TrainerSetup {
  stage: 'sft' | 'rm';
  /** How messages name the stage. */
  title: string;
  experiment: Experiment;
  settings: LoopSettings;
  /** The model to train, saved with its head; when resumed, its checkpoint also gives the step and AdamW's moments. */
  model: LoadedModel;
  /** The checkpoint the run resumed from. */
  resumedFrom?: string;
  graph: StageGraph;
  outputDir: string;
  emit: EmitEvent;
}

export function describeModel(cfg: ModelConfig): string {
  return `${cfg.nLayer} layers, d=${cfg.nEmbd}, ${cfg.nHead} heads, context ${cfg.nPositions}`;
}

/** `items` in consecutive batches of `size`, each made by `make`. */
export function* inBatches<T>(items: readonly T[], size: number, make: (items: T[]) => Batch): Generator<Batch> {
  for (let i = 0; i < items.length; i += size) yield make(items.slice(i, i + size));
}

export class Trainer {
  private constructor(
    private readonly setup: TrainerSetup,
    readonly runtime: Runtime,
    readonly state: State,
    private readonly step: TrainStep,
    private readonly evaluator: Program,
    private readonly log: MetricsLog,
    readonly startStep: number,
    private readonly guard = new DivergenceGuard(setup.title, setup.resumedFrom),
    private readonly rise = new LossRise('loss'),
  ) {}

  static async create(setup: TrainerSetup): Promise<Trainer> {
    const { experiment: exp, settings: s, model, graph, emit } = setup;
    const runtime = await Runtime.create({ provider: exp.runtime.provider as never, threads: exp.runtime.threads, log: (message) => emit({ type: 'log', level: 'info', message }) });
    const state = new State(runtime);
    putTensors(state, model.params);
    const resumed = setup.resumedFrom ? model.checkpoint : undefined;
    if (resumed?.optimizerState) putOptimizerState(state, resumed.optimizerState);
    const startStep = Number(resumed?.trainerState?.step ?? 0);
    const optimizer = adamw({ weightDecay: s.weight_decay });
    const accumulate = s.gradient_accumulation_steps > 1;
    const step = await TrainStep.create(buildTrainGraph({ ...graph, optimizer, maxGradNorm: s.max_grad_norm, accumulate }), state);
    const evaluator = await runtime.load(toOnnx({ loss: graph.loss, ...graph.metrics }, `${setup.stage}_eval`));
    fs.mkdirSync(setup.outputDir, { recursive: true });
    const log = new MetricsLog(path.join(setup.outputDir, 'metrics.jsonl'), startStep);
    return new Trainer(setup, runtime, state, step, evaluator, log, startStep);
  }

  /** Trains from startStep until max_steps, or until `signal` aborts; returns the last step taken. */
  async train(data: StageData, signal?: AbortSignal): Promise<{ step: number; stopped: boolean }> {
    const { settings: s, stage, outputDir, emit } = this.setup;
    const schedule = { type: s.lr_scheduler_type, peak: s.learning_rate, warmupSteps: s.warmup_steps, totalSteps: s.max_steps, minRatio: s.min_lr_ratio };
    let window = { metrics: new Averages(), tokens: 0, start: Date.now() };
    let at = this.startStep;
    while (at < s.max_steps && !signal?.aborted) {
      at++;
      const k = s.gradient_accumulation_steps;
      const batches = Array.from({ length: k }, (_, j) => data.batch((at - 1) * k + j + 1));
      const lr = learningRate(schedule, at);
      const m = await this.step.run(batches.map((b) => b.feeds), lr, at);
      this.guard.checkUpdate(`step ${at}`, m);
      window.metrics.add(m);
      window.tokens += batches.reduce((a, b) => a + b.tokens, 0);
      emit({ type: 'progress', stage, step: at, total: s.max_steps });

      if (at % s.logging_steps === 0 || at === s.max_steps) {
        const seconds = (Date.now() - window.start) / 1000;
        const epoch = (at * s.per_device_train_batch_size * s.gradient_accumulation_steps) / data.size;
        this.reportTraining(at, { ...window.metrics.values(), learning_rate: lr, tokens_per_second: window.tokens / seconds, epoch });
        window = { metrics: new Averages(), tokens: 0, start: Date.now() };
      }
      if (data.evalBatches && (at % s.eval_steps === 0 || at === s.max_steps)) {
        const values = await this.evaluate(data.evalBatches());
        this.report(at, values);
        this.guard.checkEval(`step ${at}`, values);
      }
      if (at % s.save_steps === 0 && at < s.max_steps) await this.save(path.join(outputDir, `checkpoint-${at}`), at);
    }
    await this.guard.guard(`step ${at}`, async () => checkFinite(await this.weights(), 'the trained weights'));
    return { step: at, stopped: at < s.max_steps };
  }

  /** Saves the model and AdamW's moments as the checkpoint of step `at`; weights that are not finite stop the run. */
  async save(dir: string, at: number, extra: CheckpointExtras = {}): Promise<void> {
    const { stage, experiment, model, emit } = this.setup;
    const trainerState = { stage, step: at, seed: experiment.seed, ...extra.trainerState };
    await this.guard.save(`step ${at}`, dir, async () => saveCheckpoint(dir, await modelContents(this.state, extra.config ?? model.config, model.head, trainerState, at)));
    emit({ type: 'checkpoint', stage, step: at, path: dir });
  }

  /** Saves the run's last model: model/, or checkpoint-<step> to resume from when it stopped early. */
  async saveFinal(at: number, stopped: boolean, extra: CheckpointExtras = {}): Promise<string> {
    const dir = path.join(this.setup.outputDir, stopped ? `checkpoint-${at}` : 'model');
    await this.save(dir, at, extra);
    return dir;
  }

  /** Announces the end of the run, with the loss's warning if it climbed, and releases the sessions and the state. */
  async close(at: number, stopped: boolean): Promise<void> {
    const { stage, outputDir, emit } = this.setup;
    emit({ type: 'done', stage, step: at, outputDir, stopped, ...(this.rise.warning && { warning: this.rise.warning }) });
    await this.step.release();
    await this.evaluator.release();
    await this.state.release();
  }

  /** Reports a logging window's training metrics, warning once if the loss has climbed far above its start. */
  private reportTraining(at: number, values: Record<string, number>): void {
    this.report(at, values);
    const warning = this.rise.add(`step ${at}`, values.loss);
    if (warning) this.setup.emit({ type: 'log', level: 'warn', message: warning });
  }

  private async weights(): Promise<Map<string, NamedTensor>> {
    const { config, head } = this.setup.model;
    return readTensors(this.state, paramShapes(config, { head }));
  }

  private report(at: number, values: Record<string, number>): void {
    const time = this.log.append(this.setup.stage, at, values);
    this.setup.emit({ type: 'metrics', stage: this.setup.stage, step: at, time, values });
  }

  /** The loss and metrics over the held-out batches, each weighted by its weight, as eval_<name>. */
  private async evaluate(batches: Iterable<Batch>): Promise<Record<string, number>> {
    const totals = new Averages();
    for (const batch of batches) {
      const out = await this.evaluator.run(this.state.feedsFor(this.evaluator, batch.feeds));
      totals.add(Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Number((t.data as Float32Array)[0])])), batch.weight);
    }
    return totals.values('eval_');
  }
}

/** Weighted means of named values; names starting "min_" or "max_" keep the extreme instead. */
class Averages {
  private readonly totals = new Map<string, number>();
  private weight = 0;

  add(values: Record<string, number>, weight = 1): void {
    for (const [k, v] of Object.entries(values)) {
      const extreme = extremeOf(k), prev = this.totals.get(k);
      this.totals.set(k, extreme ? (prev === undefined ? v : extreme(prev, v)) : (prev ?? 0) + v * weight);
    }
    this.weight += weight;
  }

  values(prefix = ''): Record<string, number> {
    return Object.fromEntries([...this.totals].map(([k, v]) => [prefix + k, extremeOf(k) ? v : v / this.weight]));
  }
}

const extremeOf = (name: string) => (name.startsWith('min_') ? Math.min : name.startsWith('max_') ? Math.max : undefined);

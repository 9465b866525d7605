/**
 * The training loop every stage shares. The run's models live in one engine State, each under its
 * name ("policy.", "value.", "ref."), trained or frozen; one step graph updates the trained ones
 * (AdamW, gradient clipping, the learning rate fed from the schedule). The loop takes steps until
 * the last or a stop, logs metrics averaged over logging windows to metrics.jsonl and as events,
 * evaluates held-out data, saves checkpoints, stops on divergence, and resumes to the same curve as
 * an uninterrupted run (a stage makes step k a function of the seed and k).
 *
 * A stage brings its graph, its models and its steps: an offline stage (SFT, reward model) one
 * update per step on its next batch (`train`); an online one (PPO) a rollout and several updates
 * per step (`run`).
 */
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { toOnnx } from '../engine/onnx';
import { adamw } from '../engine/optim';
import { Program, Runtime } from '../engine/runtime';
import { State } from '../engine/state';
import { TrainStep } from '../engine/step';
import { buildTrainGraph } from '../engine/train-graph';
import {
  CheckpointContents,
  TrainerState,
  checkFinite,
  saveCheckpoint,
  saveMultiModelCheckpoint,
} from '../model/checkpoint';
import { ModelConfig } from '../model/config';
import { FloatDType, NamedTensor } from '../model/safetensors';
import { SampleRow } from '../protocol/runner';
import { trainedShapes } from './adapters';
import { Averages, LogWindow } from './averages';
import { MetricsLog } from './metrics-log';
import { DivergenceGuard, LossRise } from './divergence';
import { modelContents, putOptimizerState, putTensors, readTensors } from './model-state';
import { Schedule, learningRate } from './schedule';
import { Batch, CheckpointExtras, ModelSlot, StageData, StepSource, TrainerSetup } from './stage';

const prefixOf = (slot: ModelSlot) => (slot.name ? `${slot.name}.` : '');

export class Trainer {
  private readonly guard: DivergenceGuard;
  private readonly rise: LossRise;
  private readonly schedule: Schedule;
  private evaluator?: Program;
  /** The step being taken. */
  private at: number;

  private constructor(
    private readonly setup: TrainerSetup,
    readonly runtime: Runtime,
    readonly state: State,
    private readonly step: TrainStep,
    private readonly log: MetricsLog,
    readonly startStep: number,
  ) {
    const s = setup.settings;
    this.guard = new DivergenceGuard(setup.title, setup.resumed?.from);
    this.rise = new LossRise(setup.watchedLoss ?? 'loss');
    const totalSteps = setup.totalSteps * this.updatesPerStep;
    this.schedule = {
      type: s.lr_scheduler_type,
      peak: s.learning_rate,
      warmupSteps: s.warmup_steps,
      totalSteps,
      minRatio: s.min_lr_ratio,
    };
    this.at = startStep;
  }

  static async create(setup: TrainerSetup): Promise<Trainer> {
    const { experiment: exp, settings: s, graph, emit } = setup;
    const log = (message: string) => emit({ type: 'log', level: 'info', message });
    const runtime = await Runtime.create({
      provider: exp.runtime.provider as never,
      threads: exp.runtime.threads,
      log,
    });
    const state = new State(runtime);
    for (const slot of setup.models) {
      putTensors(state, slot.params, prefixOf(slot));
      if (slot.adapter) putTensors(state, slot.adapter.weights, prefixOf(slot));
      if (slot.optimizerState) putOptimizerState(state, slot.optimizerState, prefixOf(slot));
    }
    const startStep = Number(setup.resumed?.trainerState?.step ?? 0);
    const optimizer = adamw({ weightDecay: s.weight_decay });
    const accumulate = s.gradient_accumulation_steps > 1;
    const step = await TrainStep.create(
      buildTrainGraph({
        ...graph,
        optimizer,
        maxGradNorm: s.max_grad_norm,
        accumulate,
        updateApart: runtime.updatesApart,
      }),
      state,
    );
    const metricsLog = new MetricsLog(setup.outputDir, startStep);
    return new Trainer(setup, runtime, state, step, metricsLog, startStep);
  }

  /** The last step. */
  get totalSteps(): number {
    return this.setup.totalSteps;
  }

  /** An error that stops the run at the current step for `cause`, saying what checkpoint is left. */
  stoppedBy(cause: string): Error {
    return this.guard.stoppedBy(this.where(), cause);
  }

  private get updatesPerStep(): number {
    return this.setup.updatesPerStep ?? 1;
  }

  /** The learning rate of optimizer update `update` (1-based). */
  learningRate(update: number): number {
    return learningRate(this.schedule, update);
  }

  /**
   * Optimizer update `update` (1-based) on micro-batches whose gradients are averaged; a diverged one
   * stops the run.
   */
  async update(batches: Record<string, ort.Tensor>[], update: number): Promise<Record<string, number>> {
    const metrics = await this.step.run(batches, this.learningRate(update), update);
    this.guard.checkUpdate(this.where(), metrics);
    return metrics;
  }

  /**
   * An offline stage from start to end: the samples before training (on a fresh start) and after it
   * (unless stopped), the training, the final save; returns where the model went.
   */
  async trainWithSamples(
    data: StageData,
    showSamples: (at: number) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<{ modelDir: string; stopped: boolean }> {
    if (this.startStep === 0) await showSamples(0);
    const { step, stopped } = await this.train(data, signal);
    const modelDir = await this.saveFinal(stopped);
    if (!stopped) await showSamples(step);
    await this.close(stopped);
    return { modelDir, stopped };
  }

  /** Trains an offline stage: one update per step on the next micro-batches of `data`. */
  train(data: StageData, signal?: AbortSignal): Promise<{ step: number; stopped: boolean }> {
    const k = this.setup.settings.gradient_accumulation_steps;
    return this.run(
      {
        step: async (at) => {
          const batches = Array.from({ length: k }, (_, j) => data.batch((at - 1) * k + j + 1));
          const metrics = await this.update(
            batches.map((b) => b.feeds),
            at,
          );
          const epoch = (at * data.batchSize * k) / data.size;
          return {
            averaged: metrics,
            latest: { learning_rate: this.learningRate(at), epoch },
            tokens: batches.reduce((a, b) => a + b.tokens, 0),
          };
        },
        evalBatches: data.evalBatches,
      },
      signal,
    );
  }

  /** Takes the stage's steps from startStep to the last, or until `signal` aborts; returns the last step taken. */
  async run(source: StepSource, signal?: AbortSignal): Promise<{ step: number; stopped: boolean }> {
    const { settings: s, stage, outputDir, emit, totalSteps } = this.setup;
    let window = new LogWindow();
    while (this.at < totalSteps && !signal?.aborted) {
      const at = ++this.at;
      window.add(await source.step(at));
      emit({ type: 'progress', stage, step: at, total: totalSteps });
      const last = at === totalSteps;
      if (at % s.logging_steps === 0 || last) {
        this.reportTraining(at, window.values());
        window = new LogWindow();
      }
      if (source.evalBatches && s.eval_steps && (at % s.eval_steps === 0 || last))
        await this.evaluate(at, source.evalBatches());
      if (at % s.save_steps === 0 && !last)
        await this.save(path.join(outputDir, `checkpoint-${at}`), source.trainerState?.());
    }
    await this.guard.guard(this.where(), async () => checkFinite(await this.weights(), 'the trained weights'));
    return { step: this.at, stopped: this.at < totalSteps };
  }

  /** Appends a table of samples to the run's samples.jsonl and shows it. */
  samples(rows: SampleRow[], at = this.at): void {
    this.log.samples(at, rows);
    this.setup.emit({ type: 'samples', stage: this.setup.stage, step: at, rows });
  }

  /**
   * Saves the trained models and AdamW's moments as the checkpoint of the current step, as one
   * model folder or one folder holding a folder per model; weights that are not finite stop the run.
   */
  async save(dir: string, trainerState?: TrainerState, config?: ModelConfig): Promise<void> {
    const { stage, emit } = this.setup;
    const trained = this.trained();
    await this.guard.save(this.where(), dir, async () => {
      const contents = await this.contents(trainerState, config);
      if (trained.length === 1 && !trained[0].name) saveCheckpoint(dir, contents[0]);
      else saveMultiModelCheckpoint(dir, Object.fromEntries(trained.map((slot, i) => [slot.name, contents[i]])));
    });
    emit({ type: 'checkpoint', stage, step: this.at, path: dir });
  }

  /**
   * Saves the run's last models: each in its final folder, "model" last (so a model/ folder means
   * all are there), or as checkpoint-<step> to resume from when it stopped early. Returns the model
   * one generates with or goes on from.
   */
  async saveFinal(stopped: boolean, extra: CheckpointExtras = {}): Promise<string> {
    const { outputDir, stage, emit } = this.setup;
    const main = this.trained().find((slot) => slot.finalDir === 'model') ?? this.trained()[0];
    if (stopped) {
      const dir = path.join(outputDir, `checkpoint-${this.at}`);
      await this.save(dir, extra.trainerState, extra.config);
      return path.join(dir, main.name);
    }
    const order = [...this.trained()].sort((a, b) => Number(a === main) - Number(b === main));
    await this.guard.guard(this.where(), async () => {
      const contents = await this.contents(extra.trainerState, extra.config, true);
      for (const slot of order)
        saveCheckpoint(path.join(outputDir, slot.finalDir ?? slot.name), contents[this.trained().indexOf(slot)]);
    });
    const modelDir = path.join(outputDir, main.finalDir ?? main.name);
    emit({ type: 'checkpoint', stage, step: this.at, path: modelDir });
    return modelDir;
  }

  /**
   * Announces the end of the run, with the loss's warning if it climbed and the stage's own
   * `warnings`, and releases the sessions and the state.
   */
  async close(stopped: boolean, warnings: string[] = []): Promise<void> {
    const { stage, outputDir, emit } = this.setup;
    const warning = [this.rise.warning, ...warnings].filter((w) => !!w).join('; ');
    emit({ type: 'done', stage, step: this.at, outputDir, stopped, ...(warning && { warning }) });
    await this.step.release();
    await this.evaluator?.release();
    await this.state.release();
  }

  private where(): string {
    return `${this.setup.stepName ?? 'step'} ${this.at}`;
  }

  private trained(): ModelSlot[] {
    return this.setup.models.filter((slot) => slot.trainable);
  }

  /**
   * Each trained model's checkpoint contents: weights, config (or `config` for a stage's only model),
   * trainer state, AdamW's moments, its source's tokenizer files and its dtype; unless `final`, the
   * weights stay float32 on disk, so a run resumes from them exactly.
   */
  private async contents(extra: TrainerState = {}, config?: ModelConfig, final = false): Promise<CheckpointContents[]> {
    const { stage, experiment } = this.setup;
    const trainerState = { stage, step: this.at, seed: experiment.seed, ...extra };
    const optimizerStep = this.at * this.updatesPerStep;
    const trained = this.trained();
    if (config && trained.length > 1)
      throw new Error("a config in place of the trained model's needs a stage with one trained model");
    return Promise.all(
      trained.map(async (slot) => ({
        ...(await modelContents(
          this.state,
          config ?? slot.config,
          trainedShapes(slot),
          trainerState,
          optimizerStep,
          prefixOf(slot),
        )),
        adapter: slot.adapter,
        source: slot.source,
        dtype: this.dtypeOf(slot),
        storeFloat32: !final,
      })),
    );
  }

  /** The dtype a model is saved in: the experiment's torch_dtype, or for "auto" its source's. */
  private dtypeOf(slot: ModelSlot): FloatDType {
    const chosen = this.setup.experiment.torch_dtype;
    return chosen && chosen !== 'auto' ? chosen : (slot.dtype ?? 'float32');
  }

  /** Reports a logging window's training metrics, warning once if the watched loss has climbed far above its start. */
  private reportTraining(at: number, values: Record<string, number>): void {
    this.report(at, values);
    const watched = this.setup.watchedLoss ?? 'loss';
    const warning = values[watched] !== undefined ? this.rise.add(this.where(), values[watched]) : undefined;
    if (warning) this.setup.emit({ type: 'log', level: 'warn', message: warning });
  }

  private async weights(): Promise<Map<string, NamedTensor>> {
    const all = new Map<string, NamedTensor>();
    for (const slot of this.trained()) {
      const weights = await readTensors(this.state, trainedShapes(slot), prefixOf(slot));
      for (const [name, t] of weights) all.set(prefixOf(slot) + name, t);
    }
    return all;
  }

  private report(at: number, values: Record<string, number>): void {
    const time = this.log.append(this.setup.stage, at, values);
    this.setup.emit({ type: 'metrics', stage: this.setup.stage, step: at, time, values });
  }

  /**
   * Reports the loss and metrics over the held-out batches, each weighted by its weight, as
   * eval_<name>; a non-finite eval loss stops the run.
   */
  private async evaluate(at: number, batches: Iterable<Batch>): Promise<void> {
    const { graph, stage } = this.setup;
    const { loss, metrics } = graph.evaluation ?? graph;
    this.evaluator ??= await this.runtime.load(toOnnx({ loss, ...metrics }, `${stage}_eval`));
    const totals = new Averages();
    for (const batch of batches) {
      const out = await this.evaluator.run(this.state.feedsFor(this.evaluator, batch.feeds));
      totals.add(
        Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Number((t.data as Float32Array)[0])])),
        batch.weight,
      );
    }
    const values = totals.values('eval_');
    this.report(at, values);
    this.guard.checkEval(this.where(), values);
  }
}

/**
 * Starts, resumes and stops runs: one training process per run, its events mirrored into the run's
 * record in the registry, so the Runs view, the status bar and a later window all agree on what is
 * live. No vscode import.
 */
import * as fs from 'fs';
import * as path from 'path';
import { EventEmitter } from 'events';
import { decodeUtf8 } from '../data/jsonl';
import { ExperimentStage, RunEvent, RuntimeOverrides, SampleFrom, StartCommand } from '../protocol/runner';
import {
  NO_PROCESS,
  RunRecord,
  RunRegistry,
  checkResumable,
  liveProcess,
  recordEvent,
  skippedCheckpoints,
} from '../runs/registry';
import { watchRun } from '../runs/watched';
import { LogLine, ProcessOptions, ProcessOutcome, TrainingProcess } from './runner';

export interface RunRequest {
  stage: ExperimentStage;
  configFile: string;
  /** The workspace folder holding the experiment file; the files it names must be inside it too. */
  workspaceFolder: string;
  registry: RunRegistry;
  runtime?: RuntimeOverrides;
  /** Start the training process under Node's inspector; it waits for a debugger (a `debugger` event says where). */
  debug?: boolean;
  /** comparisons: the run's model to sample from. */
  sampleFrom?: SampleFrom;
}

/** A run whose training process this host started and is watching. */
export class LiveRun {
  private firstStep?: { step: number; time: number };

  constructor(
    readonly registry: RunRegistry,
    readonly record: RunRecord,
    readonly process: TrainingProcess,
  ) {}

  get dir(): string {
    return this.registry.dir(this.record.id);
  }

  /** Seconds left at the pace since the first step of this process, once there is a pace. */
  etaSeconds(now = Date.now()): number | undefined {
    const { step, total } = this.record;
    if (!this.firstStep || !total || step <= this.firstStep.step) return undefined;
    const perStep = (now - this.firstStep.time) / 1000 / (step - this.firstStep.step);
    return Math.max(0, (total - step) * perStep);
  }

  /** The first step after startup anchors the pace (startup is not training). */
  notePace(step: number): void {
    if (!this.firstStep) this.firstStep = { step, time: Date.now() };
  }
}

export class RunSupervisor extends EventEmitter<{
  started: [LiveRun];
  /** A run's record changed on disk (started, logged metrics, saved a checkpoint, ended). */
  changed: [RunRecord];
  event: [LiveRun, RunEvent];
  log: [LiveRun, LogLine];
  ended: [LiveRun, ProcessOutcome];
}> {
  private readonly live = new Map<string, LiveRun>();
  /** Each run's final record write, so `stop()` can wait for it. */
  private readonly finished = new WeakMap<LiveRun, Promise<void>>();

  constructor(private readonly processOptions: ProcessOptions) {
    super();
  }

  start(request: RunRequest): LiveRun {
    const record = request.registry.create({
      name: experimentName(request.configFile),
      stage: request.stage,
      configFile: request.configFile,
    });
    record.models = request.registry.stageModels(request.configFile);
    return this.launch(
      request.registry,
      record,
      { workspaceFolder: request.workspaceFolder, runtime: request.runtime, sampleFrom: request.sampleFrom },
      request.debug,
    );
  }

  /**
   * Continues a stopped or failed run from its newest complete checkpoint, in the same run folder;
   * the log warns of each incomplete one passed over.
   */
  resume(registry: RunRegistry, id: string, workspaceFolder: string, runtime?: RuntimeOverrides): LiveRun {
    const record = registry.get(id);
    if (!record) throw new Error(`no run "${id}" in ${registry.root}`);
    checkResumable(record);
    const search = registry.checkpoints(record);
    const checkpoint = search.latest;
    if (!checkpoint) {
      const skipped = search.incomplete.length ? ` (${skippedCheckpoints(search).join('; ')})` : '';
      throw new Error(`run "${id}" saved no complete checkpoint to resume from${skipped}; start a new run instead`);
    }
    const resumed = { ...record, step: checkpoint.step, resumedFrom: checkpoint.path };
    const run = this.launch(registry, resumed, { workspaceFolder, runtime, resumeFrom: checkpoint.path });
    for (const message of skippedCheckpoints(search)) this.emit('log', run, { level: 'warn', message });
    return run;
  }

  /** Stops the run after its current step; resolves once the process is gone and the record final. */
  async stop(run: LiveRun): Promise<ProcessOutcome> {
    const outcome = await run.process.stop();
    await this.finished.get(run);
    return outcome;
  }

  /** Every run this host is watching. */
  runs(): LiveRun[] {
    return [...this.live.values()];
  }

  find(registry: RunRegistry, id: string): LiveRun | undefined {
    return this.live.get(registry.dir(id));
  }

  /** For shutdown: asks every run to stop and save; the processes finish on their own. */
  stopAll(): void {
    for (const run of this.live.values()) void run.process.stop();
  }

  private launch(
    registry: RunRegistry,
    record: RunRecord,
    how: Pick<StartCommand, 'workspaceFolder' | 'resumeFrom' | 'runtime' | 'sampleFrom'>,
    debug = false,
  ): LiveRun {
    const options = debug
      ? { ...this.processOptions, execArgv: [...(this.processOptions.execArgv ?? []), '--inspect=127.0.0.1:0'] }
      : this.processOptions;
    const dir = registry.dir(record.id);
    const proc = TrainingProcess.start(
      {
        type: 'start',
        stage: record.stage,
        configFile: record.configFile,
        outputDir: dir,
        models: record.models,
        ...how,
      },
      options,
    );
    Object.assign(record, { status: 'running', error: undefined, logTail: undefined }, liveProcess(proc.pid));
    watchRun(dir, true);
    registry.save(record);
    const run = new LiveRun(registry, record, proc);
    this.live.set(dir, run);
    proc.on('event', (event) => this.onEvent(run, event));
    proc.on('log', (line) => this.emit('log', run, line));
    this.finished.set(run, this.finish(run));
    this.emit('started', run);
    this.emit('changed', record);
    return run;
  }

  private onEvent(run: LiveRun, event: RunEvent): void {
    if (event.type === 'progress') run.notePace(event.step);
    const save = recordEvent(run.record, event);
    if (save) run.registry.save(run.record);
    this.emit('event', run, event);
    // Not on every step: views re-read the registry on a change.
    if (save) this.emit('changed', run.record);
  }

  /** Writes the final record, however the process ended. */
  private finish(run: LiveRun): Promise<void> {
    return run.process.outcome.then((outcome) => {
      const { record } = run;
      Object.assign(record, { status: outcome.status, step: outcome.step }, NO_PROCESS);
      if (outcome.status === 'failed') Object.assign(record, { error: outcome.error, logTail: outcome.logTail });
      run.registry.save(record);
      watchRun(run.dir, false);
      this.live.delete(run.dir);
      this.emit('changed', record);
      this.emit('ended', run, outcome);
    });
  }
}

/**
 * The experiment's `name`, read without the engine (the training process validates the whole
 * file); for a config without one, or one that cannot be read, its file name.
 */
export function experimentName(configFile: string): string {
  try {
    const json = JSON.parse(decodeUtf8(fs.readFileSync(configFile))) as { name?: unknown };
    if (typeof json.name === 'string' && json.name.trim()) return json.name.trim();
  } catch {
    // An unreadable config fails in the training process, with the reason.
  }
  return path.basename(configFile).replace(/(\.rlhf)?\.json$/, '');
}

/**
 * The runs registry on disk: one folder per run under the workspace's runs folder (by default
 * `.rlhf/runs/<id>/`), holding `run.json` (what the Runs view shows), the trainer's
 * `metrics.jsonl`, `checkpoint-<step>/` folders and the final `model/`. The extension host writes
 * run.json; the training process writes everything else.
 *
 * run.json survives reloads, so a run recorded as running is checked against its process on every
 * read: the UI must never show a dead run as live, nor take an unrelated process that has the same
 * id for it (src/runs/process-identity.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { ADAPTER_FILES, CHECKPOINT_FILES, incompleteCheckpoint } from '../model/checkpoint-layout';
import { STAGE_INFO, stageLabel } from '../shared/stages';
import { EXPERIMENT_STAGES, ExperimentStage, RunEvent, StageModels, stageModelsSchema } from '../protocol/runner';
import { CAN_IDENTIFY_PROCESSES, isRecordedProcessAlive, readProcessIdentity } from './process-identity';
import { isWatchedHere } from './watched';

export const RUN_STATUSES = ['running', 'finished', 'stopped', 'failed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

const runRecordSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  stage: z.enum(EXPERIMENT_STAGES),
  status: z.enum(RUN_STATUSES),
  /** ISO times. */
  created: z.string(),
  updated: z.string(),
  configFile: z.string(),
  /** The training process, while the run is live. */
  pid: z.number().int().positive().optional(),
  /** What tells that process apart from a later one with the same id. */
  pidIdentity: z.object({ started: z.string(), command: z.string() }).optional(),
  step: z.number().int().min(0),
  total: z.number().int().min(0).optional(),
  /** The last logged value of each metric. */
  metrics: z.record(z.string(), z.number().nullable()),
  /** Why the run failed, and the process's last log lines. */
  error: z.string().optional(),
  logTail: z.array(z.string()).optional(),
  /** The checkpoint the latest resume started from. */
  resumedFrom: z.string().optional(),
  /** The earlier stages' models the run started with; a resume uses the same ones. */
  models: stageModelsSchema.optional(),
  /** Its place among its experiment's runs of its stage (1, 2…), which tells them apart. */
  number: z.number().int().positive().optional(),
  /** A name the person gave the run, shown in place of the one made up for it. */
  label: z.string().min(1).optional(),
});

export type RunRecord = z.infer<typeof runRecordSchema>;

export interface Checkpoint {
  path: string;
  step: number;
}

/** A `checkpoint-<step>` folder that cannot be resumed from, and why. */
export interface IncompleteCheckpoint extends Checkpoint {
  reason: string;
}

export interface CheckpointSearch {
  /** The newest complete checkpoint. */
  latest?: Checkpoint;
  /** The incomplete ones newer than it, newest first: saves cut off by a crash or kill. */
  incomplete: IncompleteCheckpoint[];
}

export const PROCESS_GONE =
  'The training process ended without reporting back (it crashed or was killed). Resume Run continues from the last checkpoint.';

/** How a stop asked of a run that another process trains ended. */
export interface StopElsewhere {
  /**
   * `ended`: the run is over (it stopped, or had ended already); `stale`: its process is gone or is
   * another program, so nothing was signalled and the run is marked as ended; `timeout`: it still
   * runs after the wait.
   */
  result: 'ended' | 'stale' | 'timeout';
  /** The run's record afterwards. */
  record: RunRecord | undefined;
}

/** How long to wait for a run another process trains to end, and how often to look. */
export interface StopWait {
  timeoutMs: number;
  pollMs?: number;
}

/** How a run is called: the name given it, else its experiment, stage and number ("demo SFT #2"). */
export function runTitle(record: Pick<RunRecord, 'name' | 'stage' | 'number' | 'label'>): string {
  return record.label ?? `${record.name} ${stageLabel(record.stage)}${record.number ? ` #${record.number}` : ''}`;
}

/** The record's fields for a live process: its id and what identifies it. */
export function liveProcess(pid: number | undefined): Pick<RunRecord, 'pid' | 'pidIdentity'> {
  return { pid, pidIdentity: pid === undefined ? undefined : readProcessIdentity(pid) };
}

/** The record's fields once its process has ended. */
export const NO_PROCESS: Pick<RunRecord, 'pid' | 'pidIdentity'> = { pid: undefined, pidIdentity: undefined };

export class RunRegistry {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return path.join(this.root, id);
  }

  /** A new run folder and its record, named `<time>-<name>-<stage>` like the CLI's runs. */
  create(run: { name: string; stage: ExperimentStage; configFile: string }): RunRecord {
    const now = new Date();
    const number = this.records().filter((r) => r.configFile === run.configFile && r.stage === run.stage).length + 1;
    const base = `${now.toISOString().replace(/[:.]/g, '-')}-${safeName(run.name)}-${run.stage}`;
    fs.mkdirSync(this.root, { recursive: true });
    let id = base;
    // mkdir without `recursive` fails if the folder exists, so two runs started at once never share one.
    for (let n = 2; !tryMkdir(this.dir(id)); n++) id = `${base}-${n}`;
    const record: RunRecord = {
      id,
      name: run.name,
      stage: run.stage,
      status: 'running',
      created: now.toISOString(),
      updated: now.toISOString(),
      configFile: run.configFile,
      step: 0,
      metrics: {},
      number,
    };
    this.save(record);
    return record;
  }

  /** Gives a run a name of the person's choosing; an empty one brings back the one made up for it. */
  rename(record: RunRecord, label: string): void {
    const trimmed = label.trim();
    record.label = trimmed || undefined;
    this.save(record);
  }

  /** Writes run.json whole or not at all (a reader never sees half a file). */
  save(record: RunRecord): void {
    record.updated = new Date().toISOString();
    const file = path.join(this.dir(record.id), 'run.json');
    const partial = `${file}.${process.pid}.partial`;
    fs.writeFileSync(partial, `${JSON.stringify(record, null, 2)}\n`);
    fs.renameSync(partial, file);
  }

  /**
   * The run's record. A run recorded as running whose process is gone, or is now another program,
   * ended unseen (see `endUnseen`).
   */
  get(id: string): RunRecord | undefined {
    const record = this.read(id);
    return record && this.checked(record);
  }

  /** Every run with a readable run.json, newest first. */
  list(): RunRecord[] {
    return this.records()
      .map((r) => this.checked(r))
      .sort((a, b) => b.created.localeCompare(a.created));
  }

  /**
   * The record, ended (see `endUnseen`) if it says running but its process is gone, unless this
   * host is watching that process: its watcher writes how the run ended, once it has read it all.
   */
  private checked(record: RunRecord): RunRecord {
    if (record.status === 'running' && !isWatchedHere(this.dir(record.id)) && !hasLiveProcess(record))
      this.endUnseen(record);
    return record;
  }

  /** Every readable run.json as it is on disk (a live-looking run is not checked against its process). */
  private records(): RunRecord[] {
    let ids: string[];
    try {
      ids = fs.readdirSync(this.root);
    } catch {
      return [];
    }
    return ids.map((id) => this.read(id)).filter((r): r is RunRecord => r !== undefined);
  }

  /** The newest complete `checkpoint-<step>` folder of a run. */
  latestCheckpoint(record: Pick<RunRecord, 'id' | 'stage'>): Checkpoint | undefined {
    return this.checkpoints(record).latest;
  }

  /** The newest complete checkpoint of a run, and the incomplete ones newer than it. */
  checkpoints(record: Pick<RunRecord, 'id' | 'stage'>): CheckpointSearch {
    return findCheckpoints(this.dir(record.id), record.stage);
  }

  /** The final models of the newest finished SFT and reward-model runs of an experiment file. */
  stageModels(configFile: string): StageModels {
    const newest = (stage: ExperimentStage) => {
      const run = this.list().find(
        (r) => r.stage === stage && r.status === 'finished' && r.configFile === configFile && this.modelDir(r.id),
      );
      return run && this.modelDir(run.id);
    };
    return { sft: newest('sft'), rm: newest('rm') };
  }

  /** The final model of a finished run: a model folder, or a PEFT adapter folder (base + adapter). */
  modelDir(id: string): string | undefined {
    const dir = path.join(this.dir(id), 'model');
    const has = (file: string) => fs.existsSync(path.join(dir, file));
    return has(CHECKPOINT_FILES.config) || has(ADAPTER_FILES.config) ? dir : undefined;
  }

  /** The final model of a finished LoRA run: its PEFT adapter folder. */
  adapterDir(id: string): string | undefined {
    const dir = this.modelDir(id);
    return dir && fs.existsSync(path.join(dir, ADAPTER_FILES.config)) ? dir : undefined;
  }

  /**
   * Asks a run that another process trains (another window's training process, or the CLI) to
   * stop after its current step, as Ctrl-C does, and waits up to `wait.timeoutMs` for it to end.
   */
  stopElsewhere(id: string, wait: StopWait): Promise<StopElsewhere> {
    return this.signalElsewhere(id, 'SIGINT', wait);
  }

  /** Ends a run that another process trains now, without a checkpoint for the current step. */
  forceStopElsewhere(id: string, wait: StopWait): Promise<StopElsewhere> {
    return this.signalElsewhere(id, 'SIGKILL', wait);
  }

  delete(id: string): void {
    const record = this.get(id);
    if (!record) throw new Error(`no run "${id}" in ${this.root}`);
    if (record.status === 'running') throw new Error(`run "${id}" is still running; stop it first`);
    fs.rmSync(this.dir(id), { recursive: true, force: true });
  }

  /** Signals the run's process only once it is verified to be the one the run recorded. */
  private async signalElsewhere(id: string, signal: NodeJS.Signals, wait: StopWait): Promise<StopElsewhere> {
    const record = this.read(id);
    if (record?.status !== 'running') return { result: 'ended', record };
    if (!hasLiveProcess(record)) return { result: 'stale', record: this.endUnseen(record) };
    const pid = record.pid!;
    if (!CAN_IDENTIFY_PROCESSES) {
      throw new Error(`cannot stop run "${id}" from here: process ${pid} cannot be verified as its training process`);
    }
    try {
      process.kill(pid, signal);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ESRCH') throw new Error(`cannot stop run "${id}": process ${pid} cannot be signalled (${code})`);
      // The process ended meanwhile: the record says how.
    }
    return this.waitForEnd(id, wait);
  }

  private async waitForEnd(id: string, { timeoutMs, pollMs = 500 }: StopWait): Promise<StopElsewhere> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, timeoutMs)));
      const record = this.get(id);
      if (record?.status !== 'running') return { result: 'ended', record };
      if (Date.now() >= deadline) return { result: 'timeout', record };
    }
  }

  /** run.json as written, unchecked; undefined if missing, unreadable or not a run of this id. */
  private read(id: string): RunRecord | undefined {
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(path.join(this.dir(id), 'run.json'), 'utf8'));
    } catch {
      return undefined;
    }
    const parsed = runRecordSchema.safeParse(json);
    return parsed.success && parsed.data.id === id ? parsed.data : undefined;
  }

  /**
   * A run recorded as running whose process is gone (or is another program now) ended unseen:
   * stopped if a checkpoint covers its last recorded step (a process whose host closed saves one on
   * the way out), failed otherwise.
   */
  private endUnseen(record: RunRecord): RunRecord {
    const checkpoint = this.latestCheckpoint(record);
    if (checkpoint && checkpoint.step >= record.step) {
      Object.assign(record, { status: 'stopped', step: checkpoint.step });
    } else {
      Object.assign(record, { status: 'failed', error: PROCESS_GONE });
    }
    Object.assign(record, NO_PROCESS);
    this.save(record);
    return record;
  }
}

/** A run goes on only from where it stopped or failed: not while it runs, nor once it has finished. */
export function checkResumable(record: RunRecord): void {
  if (record.status === 'running') throw new Error(`run "${record.id}" is already running`);
  if (record.status === 'finished') throw new Error(`run "${record.id}" has finished; there is nothing to resume`);
}

/**
 * The `checkpoint-<step>` folders in `dir` below step `below`: the newest complete one for `stage`
 * (src/model/checkpoint-layout.ts), and the incomplete ones newer than it. In-progress saves
 * ("checkpoint-<step>.partial") are never taken.
 */
export function findCheckpoints(dir: string, stage: ExperimentStage, below = Infinity): CheckpointSearch {
  const steps = safeReaddir(dir).flatMap((name) => {
    const m = /^checkpoint-(\d+)$/.exec(name);
    return m && Number(m[1]) < below ? [{ path: path.join(dir, name), step: Number(m[1]) }] : [];
  });
  const incomplete: IncompleteCheckpoint[] = [];
  for (const checkpoint of steps.sort((a, b) => b.step - a.step)) {
    const reason = incompleteCheckpoint(checkpoint.path, STAGE_INFO[stage].checkpointModels);
    if (!reason) return { latest: checkpoint, incomplete };
    incomplete.push({ ...checkpoint, reason });
  }
  return { incomplete };
}

/** A warning for each incomplete checkpoint a resume passes over. */
export function skippedCheckpoints({ latest, incomplete }: CheckpointSearch): string[] {
  const instead = latest ? `resuming from ${path.basename(latest.path)}` : 'nothing older to resume from';
  return incomplete.map((c) => `skipped ${c.path}: incomplete, ${c.reason} (${instead})`);
}

/**
 * The recorded run whose folder holds `checkpoint` (`<runs>/<id>/checkpoint-N`, or deeper, as in
 * `<runs>/<id>/ppo/checkpoint-N`), with the registry of its runs folder.
 */
export function runOfCheckpoint(checkpoint: string): { registry: RunRegistry; record: RunRecord } | undefined {
  for (let dir = path.dirname(path.resolve(checkpoint)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (!fs.existsSync(path.join(dir, 'run.json'))) continue;
    const registry = new RunRegistry(path.dirname(dir));
    const record = registry.get(path.basename(dir));
    return record && { registry, record };
  }
  return undefined;
}

/**
 * Mirrors a training event into the run's record: progress, the last value of each metric, the
 * step of each checkpoint. Returns whether run.json should be written (not on every step).
 */
export function recordEvent(record: RunRecord, event: RunEvent): boolean {
  switch (event.type) {
    case 'progress':
      Object.assign(record, { step: event.step, total: event.total });
      return false;
    case 'metrics':
      record.step = event.step;
      Object.assign(record.metrics, event.values);
      return true;
    case 'checkpoint':
      record.step = event.step;
      return true;
    default:
      return false;
  }
}

/** Whether the process a running record names is still that process (not one that reused its id). */
function hasLiveProcess(record: RunRecord): boolean {
  return record.pid !== undefined && isRecordedProcessAlive(record.pid, record.pidIdentity);
}

function safeName(name: string): string {
  return name.replace(/[^\w.-]+/g, '_').slice(0, 60) || 'run';
}

function tryMkdir(dir: string): boolean {
  try {
    fs.mkdirSync(dir);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

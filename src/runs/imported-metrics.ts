/**
 * Metrics of a run trained elsewhere, read for the charts view beside local runs: a TRL/transformers
 * `trainer_state.json` (its `log_history`), a TensorBoard event file, or a JSONL file of metric rows
 * (ours, or any with a `step`/`global_step`/`_step` field). Each becomes rows of numbers by step,
 * under the names TRL logs them (transformers' TensorBoard names `train/loss` and `eval/loss` read
 * back as `loss` and `eval_loss`), and the stage whose dashboard shows most of them.
 */
import * as fs from 'fs';
import * as path from 'path';
import { EXPERIMENT_STAGES, ExperimentStage } from '../protocol/runner';
import { STAGE_INFO } from '../shared/stages';
import { decodeEvents } from '../util/tfevents';

export interface MetricRow {
  step: number;
  /** Seconds since the epoch; NaN where the file does not say. */
  time: number;
  values: Record<string, number>;
}

export interface ImportedRun {
  file: string;
  /** The format read, as messages name it. */
  format: string;
  rows: MetricRow[];
  stage: ExperimentStage;
  /** What was left out or looked wrong, for the person to see. */
  notes: string[];
}

/** The rows of a metrics file, by its format; a file that is none of them throws naming it. */
export function readImportedMetrics(file: string): ImportedRun {
  const name = path.basename(file);
  const { format, rows, notes } = name.includes('tfevents')
    ? fromEventFile(file)
    : name.endsWith('.jsonl')
      ? fromJsonLines(file)
      : fromTrainerState(file);
  if (!rows.length) throw new Error(`${file}: no logged metrics found in this ${format}`);
  return { file, format, rows, stage: likelyStage(rows), notes };
}

type Read = Omit<ImportedRun, 'file' | 'stage'>;

function fromTrainerState(file: string): Read {
  let state: unknown;
  try {
    state = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const history = (state as { log_history?: unknown })?.log_history;
  if (!Array.isArray(history))
    throw new Error(
      `${file}: expected a trainer_state.json with a "log_history" list, a TensorBoard event file or JSONL`,
    );
  const notes: string[] = [];
  const rows: MetricRow[] = [];
  history.forEach((entry: unknown, i) => {
    const row = metricRow(entry, NaN);
    if (row) rows.push(row);
    else notes.push(`log_history[${i}] has no "step"; left out`);
  });
  return { format: 'trainer_state.json', rows: byStep(rows), notes };
}

function fromJsonLines(file: string): Read {
  const notes: string[] = [];
  const rows: MetricRow[] = [];
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      let entry: unknown;
      try {
        entry = JSON.parse(line);
      } catch {
        notes.push(`${path.basename(file)}:${i + 1} is not JSON; left out`);
        return;
      }
      const row = metricRow(entry, NaN);
      if (row) rows.push(row);
      else notes.push(`${path.basename(file)}:${i + 1} has no "step", "global_step" or "_step"; left out`);
    });
  return { format: 'JSONL metrics file', rows: byStep(rows), notes };
}

function fromEventFile(file: string): Read {
  const { events, problem } = decodeEvents(fs.readFileSync(file));
  const notes = problem ? [`${path.basename(file)}: ${problem}; the events before it are shown`] : [];
  const rows: MetricRow[] = [];
  for (const event of events) {
    if (!event.scalars) continue;
    const values = Object.fromEntries(Object.entries(event.scalars).map(([tag, v]) => [trlName(tag), v]));
    rows.push({ step: event.step, time: event.wallTime, values });
  }
  return { format: 'TensorBoard event file', rows: byStep(rows), notes };
}

const STEP_FIELDS = ['step', 'global_step', '_step'];
const TIME_FIELDS = ['time', '_timestamp', 'wall_time'];
const NOT_VALUES = new Set([...STEP_FIELDS, ...TIME_FIELDS, 'stage']);

/** A logged row's step, time and numeric values (null as NaN: a gap); undefined without a step. */
function metricRow(entry: unknown, time: number): MetricRow | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const fields = entry as Record<string, unknown>;
  const step = STEP_FIELDS.map((f) => fields[f]).find((v) => typeof v === 'number');
  if (step === undefined) return undefined;
  const at = TIME_FIELDS.map((f) => fields[f]).find((v) => typeof v === 'number');
  const values: Record<string, number> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (NOT_VALUES.has(name)) continue;
    if (typeof value === 'number') values[name] = value;
    else if (value === null) values[name] = NaN;
  }
  return { step: step as number, time: (at as number | undefined) ?? time, values };
}

/** transformers' TensorBoard tags (`train/loss`, `eval/loss`) under the names its logs use. */
function trlName(tag: string): string {
  if (tag.startsWith('train/')) return tag.slice('train/'.length);
  if (tag.startsWith('eval/')) return `eval_${tag.slice('eval/'.length)}`;
  return tag;
}

/** Rows of the same step merged (transformers logs a step's eval after its training values), in step order. */
function byStep(rows: MetricRow[]): MetricRow[] {
  const merged = new Map<number, MetricRow>();
  for (const row of rows) {
    const seen = merged.get(row.step);
    if (seen) Object.assign(seen.values, row.values);
    else merged.set(row.step, { ...row, values: { ...row.values } });
  }
  return [...merged.values()].sort((a, b) => a.step - b.step);
}

/**
 * The stage whose dashboard charts most of the run's metrics, a metric that several dashboards chart
 * counting for less (SFT's when none does).
 */
function likelyStage(rows: MetricRow[]): ExperimentStage {
  const names = new Set(rows.flatMap((r) => Object.keys(r.values)));
  const charted = (stage: ExperimentStage) => STAGE_INFO[stage].dashboard.flatMap((c) => c.metrics);
  const stagesCharting = new Map<string, number>();
  for (const stage of EXPERIMENT_STAGES)
    for (const metric of new Set(charted(stage))) stagesCharting.set(metric, (stagesCharting.get(metric) ?? 0) + 1);
  let best: ExperimentStage = 'sft',
    bestScore = 0;
  for (const stage of EXPERIMENT_STAGES) {
    const matched = [...new Set(charted(stage))].filter((m) => names.has(m));
    const score = matched.reduce((sum, m) => sum + 1 / stagesCharting.get(m)!, 0);
    if (score > bestScore) [best, bestScore] = [stage, score];
  }
  return best;
}

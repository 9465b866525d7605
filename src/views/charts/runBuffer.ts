/**
 * One run's metrics and samples as the charts panel holds them: the history in the run folder
 * (metrics.jsonl, samples.jsonl) merged with the training process's live events, without gaps or
 * duplicates. Each change comes back as the message that brings a webview up to date. No vscode
 * import, so the merging is tested in plain Node.
 */
import * as fs from 'fs';
import * as path from 'path';
import { HostMessage, PointsMessage, SampleGroup } from '../../protocol/charts';
import { SampleRow } from '../../protocol/runner';

/** A Float64Array that grows by doubling; NaN marks a missing value. */
class Column {
  private data: Float64Array;
  length = 0;

  constructor(capacity = 256) {
    this.data = new Float64Array(capacity);
  }

  /** Sets the value at `index`, growing the column up to it (new entries missing). */
  set(index: number, value: number): void {
    if (index >= this.data.length) {
      const grown = new Float64Array(Math.max(this.data.length * 2, index + 1));
      grown.set(this.data.subarray(0, this.length));
      this.data = grown;
    }
    if (index >= this.length) {
      this.data.fill(NaN, this.length, index + 1);
      this.length = index + 1;
    }
    this.data[index] = value;
  }

  get(index: number): number {
    return index < this.length ? this.data[index] : NaN;
  }

  truncate(length: number): void {
    this.length = Math.min(this.length, length);
  }

  /** A copy of entries from..to (a copy, so that posting it does not copy the whole column). */
  slice(from: number, to: number): Float64Array {
    const out = new Float64Array(to - from);
    out.set(this.data.subarray(from, Math.max(from, Math.min(to, this.length))));
    out.fill(NaN, Math.max(0, this.length - from));
    return out;
  }
}

/** At most this many sample groups are kept per run: the table shows the latest generations. */
const MAX_SAMPLE_GROUPS = 200;

export class RunBuffer {
  private readonly steps = new Column();
  private readonly times = new Column();
  private readonly metrics = new Map<string, Column>();
  private readonly samples = new Map<number, SampleRow[]>();

  /** Bytes of each history file merged so far (whole lines only). */
  private readonly read = { metrics: 0, samples: 0 };
  /** The step of the last sample row read from samples.jsonl. */
  private lastSampleStep?: number;

  constructor(readonly key: string) {}

  /** A buffer filled from the run folder's files (a run that has logged nothing yet has none). */
  static fromFolder(dir: string): RunBuffer {
    const buffer = new RunBuffer(dir);
    buffer.catchUp();
    return buffer;
  }

  /**
   * Merges what the run folder's files gained since the last read (for a run that another process
   * trains: another window, or the CLI) and returns the messages that bring a webview up to date.
   */
  catchUp(): HostMessage[] {
    let from: number | undefined;
    for (const row of this.readNew('metrics')) {
      const { step, time } = row;
      if (typeof step !== 'number' || typeof time !== 'number') continue;
      const index = this.merge(step, time, metricsOf(row));
      if (index !== undefined) from = Math.min(from ?? index, index);
    }
    const groups = new Map<number, SampleRow[]>();
    for (const { step, ...row } of this.readNew('samples')) {
      if (typeof step !== 'number' || typeof row.prompt !== 'string' || typeof row.response !== 'string') continue;
      // A read may end within a step's rows: the rest of that step comes first in the next one.
      const rows = groups.get(step) ?? (step === this.lastSampleStep ? [...(this.samples.get(step) ?? [])] : []);
      rows.push(sampleRow(row));
      groups.set(step, rows);
      this.lastSampleStep = step;
    }
    const changed = [...groups]
      .map(([step, rows]) => this.addSamples(step, rows))
      .filter((g): g is SampleGroup => g !== undefined);
    const messages: HostMessage[] = [];
    if (from !== undefined) messages.push(this.points(from));
    if (changed.length) messages.push({ type: 'samples', run: this.key, groups: changed });
    return messages;
  }

  get length(): number {
    return this.steps.length;
  }

  /**
   * Adds a logged step and says what changed, or undefined when nothing did (an event for a step
   * that the history already holds, since the trainer writes the file before it sends the event).
   * A step before the last one with other values means the run resumed from a checkpoint: the
   * points after it are gone, as they are from metrics.jsonl.
   */
  addMetrics(step: number, time: number, values: Record<string, number>): PointsMessage | undefined {
    const index = this.merge(step, time, values);
    return index === undefined ? undefined : this.points(index);
  }

  /** Adds a logged step as addMetrics does, and says from which index the points changed. */
  private merge(step: number, time: number, values: Record<string, number>): number | undefined {
    const last = this.length - 1;
    const at = last >= 0 && step > this.steps.get(last) ? -1 : this.indexOf(step); // most steps come after the last
    if (at >= 0 && at < last && this.holds(at, values)) return undefined;
    let index: number;
    if (at === last && at >= 0) {
      if (this.holds(at, values)) return undefined;
      index = at; // the same step's eval values, logged after its training values
    } else {
      index = at >= 0 ? at : this.insertionPoint(step);
      this.truncate(index);
      this.steps.set(index, step);
      this.times.set(index, time);
    }
    for (const name in values) {
      let column = this.metrics.get(name);
      if (!column) this.metrics.set(name, (column = new Column()));
      column.set(index, values[name]);
    }
    return index;
  }

  /** Replaces the generations of a step; undefined when they are the ones already held. */
  addSamples(step: number, rows: SampleRow[]): SampleGroup | undefined {
    const held = this.samples.get(step);
    if (held && JSON.stringify(held) === JSON.stringify(rows)) return undefined;
    this.samples.delete(step);
    this.samples.set(step, rows);
    for (const oldest of this.samples.keys()) {
      if (this.samples.size <= MAX_SAMPLE_GROUPS) break;
      this.samples.delete(oldest);
    }
    return { step, rows };
  }

  /** Every point from `from` on, as the message that replaces them in a webview. */
  points(from = 0): PointsMessage {
    const to = this.length;
    const values: Record<string, Float64Array> = {};
    for (const [name, column] of this.metrics) values[name] = column.slice(from, to);
    return {
      type: 'points',
      run: this.key,
      from,
      steps: this.steps.slice(from, to),
      times: this.times.slice(from, to),
      values,
    };
  }

  sampleGroups(): SampleGroup[] {
    return [...this.samples].map(([step, rows]) => ({ step, rows })).sort((a, b) => a.step - b.step);
  }

  /**
   * The rows appended to `<kind>.jsonl` since the last read, up to its last whole line (the line
   * being written is read next time). A file that got shorter was rewritten: it is read again whole.
   */
  private readNew(kind: 'metrics' | 'samples'): Record<string, unknown>[] {
    let text: string;
    try {
      const fd = fs.openSync(path.join(this.key, `${kind}.jsonl`), 'r');
      try {
        const size = fs.fstatSync(fd).size;
        if (size < this.read[kind]) this.read[kind] = 0;
        const bytes = Buffer.alloc(size - this.read[kind]);
        fs.readSync(fd, bytes, 0, bytes.length, this.read[kind]);
        const end = bytes.lastIndexOf(0x0a) + 1;
        this.read[kind] += end;
        text = bytes.subarray(0, end).toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return []; // no file yet
    }
    const rows: Record<string, unknown>[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const row = JSON.parse(line) as unknown;
        if (row && typeof row === 'object' && !Array.isArray(row)) rows.push(row as Record<string, unknown>);
      } catch {
        // a bad line is skipped, as the trainers' readers do
      }
    }
    return rows;
  }

  private truncate(length: number): void {
    this.steps.truncate(length);
    this.times.truncate(length);
    for (const column of this.metrics.values()) column.truncate(length);
  }

  /** Whether the point at `index` already has these values (NaN equal to NaN). */
  private holds(index: number, values: Record<string, number>): boolean {
    return Object.entries(values).every(([name, value]) => Object.is(this.metrics.get(name)?.get(index) ?? NaN, value));
  }

  /** The index of `step` among the (ascending) steps, or -1. */
  private indexOf(step: number): number {
    const i = this.insertionPoint(step);
    return i < this.length && this.steps.get(i) === step ? i : -1;
  }

  /** The first index whose step is not below `step`. */
  private insertionPoint(step: number): number {
    let lo = 0,
      hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.steps.get(mid) < step) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

const NOT_METRICS = new Set(['stage', 'step', 'time']);

/** A metrics.jsonl row's values; the file writes NaN and Infinity as null, read back as NaN (a gap in the chart). */
function metricsOf(row: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name in row) {
    if (NOT_METRICS.has(name)) continue;
    const value = row[name];
    if (typeof value === 'number') out[name] = value;
    else if (value === null) out[name] = NaN;
  }
  return out;
}

function sampleRow(row: Record<string, unknown>): SampleRow {
  return {
    prompt: row.prompt as string,
    response: row.response as string,
    ...(typeof row.score === 'number' ? { score: row.score } : {}),
    ...(typeof row.kl === 'number' ? { kl: row.kl } : {}),
  };
}

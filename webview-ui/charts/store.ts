/**
 * The page's copy of each run's metrics: growable Float64Array columns (NaN where a step has no
 * value), written in place as `points` messages arrive. A version number per run tells the charts
 * what to redraw on the next animation frame, and the recent edits from which index to recompute.
 */
import { ChartRun, PointsMessage, SampleGroup } from '../../src/protocol/charts';

export class Series {
  private data = new Float64Array(64);
  length = 0;

  get values(): Float64Array {
    return this.data;
  }

  /** Makes room for `length` entries; entries past the old length start missing. */
  resize(length: number): void {
    if (length > this.data.length) {
      let capacity = this.data.length;
      while (capacity < length) capacity *= 2;
      const grown = new Float64Array(capacity);
      grown.set(this.data.subarray(0, this.length));
      this.data = grown;
    }
    if (length > this.length) this.data.fill(NaN, this.length, length);
    this.length = length;
  }
}

/** Edits remembered per run; a chart that missed more (hidden a long while) recomputes in full. */
const EDITS_KEPT = 256;

export class RunData {
  readonly steps = new Series();
  readonly times = new Series();
  readonly metrics = new Map<string, Series>();
  readonly samples = new Map<number, SampleGroup>();
  version = 0;
  /** How many `points` messages were applied; `from` of the latest EDITS_KEPT of them. */
  edits = 0;
  private readonly editsFrom: number[] = [];

  constructor(public run: ChartRun) {}

  get length(): number {
    return this.steps.length;
  }

  /** Replaces the points from `message.from` on with the message's. */
  apply(message: PointsMessage): void {
    const from = Math.min(message.from, this.length);
    const length = from + message.steps.length;
    write(this.steps, from, length, message.steps);
    write(this.times, from, length, message.times);
    for (const [name, column] of Object.entries(message.values)) {
      let series = this.metrics.get(name);
      if (!series) this.metrics.set(name, (series = new Series()));
      write(series, from, length, column);
    }
    // A metric the message does not mention has no value at those steps.
    for (const [name, series] of this.metrics) if (!(name in message.values)) write(series, from, length);
    this.editsFrom.push(from);
    if (this.editsFrom.length > EDITS_KEPT) this.editsFrom.shift();
    this.edits++;
    this.version++;
  }

  /** The first index that changed since the run had `edits` edits (its length when none did). */
  changedSince(edits: number): number {
    const missed = this.edits - edits;
    if (missed > this.editsFrom.length || missed < 0) return 0;
    return Math.min(this.length, ...this.editsFrom.slice(this.editsFrom.length - missed));
  }

  addSamples(groups: SampleGroup[]): void {
    for (const group of groups) this.samples.set(group.step, group);
    this.version++;
  }
}

/** Replaces a series' entries from `from` on with `column` (missing values without one). */
function write(series: Series, from: number, length: number, column?: Float64Array): void {
  series.resize(from);
  series.resize(length);
  if (column) series.values.set(column, from);
}

/** Every run the page shows, by key, in legend order. */
export class RunStore {
  private readonly runs = new Map<string, RunData>();

  setRuns(runs: ChartRun[]): void {
    const kept = new Map<string, RunData>();
    for (const run of runs) {
      const data = this.runs.get(run.key) ?? new RunData(run);
      data.run = run;
      kept.set(run.key, data);
    }
    this.runs.clear();
    for (const [key, data] of kept) this.runs.set(key, data);
  }

  get(key: string): RunData | undefined {
    return this.runs.get(key);
  }

  all(): RunData[] {
    return [...this.runs.values()];
  }

  /** Every metric any run logged, sorted. */
  metricNames(): string[] {
    return [...new Set(this.all().flatMap((r) => [...r.metrics.keys()]))].sort();
  }
}

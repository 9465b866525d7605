/**
 * What a chart draws of a long run: in each pixel column, the lowest and highest point of each
 * metric, so that a spike (reward hacking, a KL blow-up) stays visible however many points share
 * the column, and the first and last point so the x range is the data's. About two points per
 * column and metric: more only cost drawing time (a canvas strokes every segment). Hover and CSV
 * read the full columns; only the drawing is decimated.
 */
import { RunData } from './store';

export interface XRange {
  min: number;
  max: number;
}

/** Below this many points per pixel column a run is drawn in full. */
const POINTS_PER_COLUMN = 2;

/**
 * The indices of a run's points to draw, ascending: those with an x in `range` (decimated to
 * `columns` columns when there are many) and the nearest one outside it on each side, so the line
 * runs to the edges of a zoomed chart. A value counts if it is above `floor` (0 on a log scale).
 */
export function pickPoints(
  x: ArrayLike<number>,
  length: number,
  series: ArrayLike<number>[],
  floor: number,
  columns: number,
  range: XRange,
): number[] {
  let first = -1,
    last = -1,
    before = -1,
    after = -1,
    inside = 0;
  for (let i = 0; i < length; i++) {
    const v = x[i];
    if (v < range.min) before = i;
    else if (v > range.max) {
      if (after < 0) after = i;
    } else if (v >= range.min) {
      if (first < 0) first = i;
      last = i;
      inside++;
    }
  }
  const picked: number[] = before >= 0 ? [before] : [];
  if (inside <= columns * POINTS_PER_COLUMN) {
    for (let i = Math.max(first, 0); i <= last; i++) if (x[i] >= range.min && x[i] <= range.max) picked.push(i);
  } else {
    extremes(x, first, last, series, floor, columns, range, picked);
  }
  if (after >= 0) picked.push(after);
  return picked;
}

/** Appends the first and last index, and each series' lowest and highest per column, in order. */
function extremes(
  x: ArrayLike<number>,
  first: number,
  last: number,
  series: ArrayLike<number>[],
  floor: number,
  columns: number,
  range: XRange,
  picked: number[],
): void {
  const scale = columns / (range.max - range.min || 1);
  const low = new Float64Array(series.length),
    high = new Float64Array(series.length);
  const lowAt = new Int32Array(series.length),
    highAt = new Int32Array(series.length);
  let column = -1;
  const flush = () => {
    const found: number[] = [];
    for (let s = 0; s < series.length; s++) found.push(lowAt[s], highAt[s]);
    found.sort((a, b) => a - b);
    for (const i of found) if (i > picked[picked.length - 1]) picked.push(i); // -1 (none) and repeats are skipped
  };
  picked.push(first);
  for (let i = first; i <= last; i++) {
    const xi = x[i];
    if (!(xi >= range.min && xi <= range.max)) continue;
    const c = Math.min(columns - 1, Math.floor((xi - range.min) * scale));
    if (c !== column) {
      flush();
      column = c;
      low.fill(Infinity);
      high.fill(-Infinity);
      lowAt.fill(-1);
      highAt.fill(-1);
    }
    for (let s = 0; s < series.length; s++) {
      const v = series[s][i];
      if (!(v > floor)) continue;
      if (v < low[s]) {
        low[s] = v;
        lowAt[s] = i;
      }
      if (v > high[s]) {
        high[s] = v;
        highAt[s] = i;
      }
    }
  }
  flush();
  if (last > picked[picked.length - 1]) picked.push(last);
}

/** The nearest point to `target` among a run's points, searched between the picked ones around it. */
export function nearestPoint(x: ArrayLike<number>, picked: number[], target: number): number {
  let lo = 0,
    hi = picked.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (x[picked[mid]] <= target) lo = mid;
    else hi = mid - 1;
  }
  let best = picked[lo] ?? -1;
  const end = picked[Math.min(lo + 1, picked.length - 1)] ?? -1;
  for (let i = best; i <= end; i++) if (Math.abs(x[i] - target) < Math.abs(x[best] - target)) best = i;
  return best;
}

/**
 * The same extremes kept up to date as a run grows, for the whole run (pickPoints serves a zoomed
 * range): buckets `width` wide from the first x, merged pairwise whenever the run outgrows
 * `capacity` of them, so that an append only touches the last bucket and a merge stays exact.
 * With as many buckets as pixel columns at most, a bucket spans one or two columns.
 */
export class Decimator {
  /** Edits of the run taken in (RunData.edits). */
  private edits = -1;
  private origin = NaN;
  private width = 0;
  private processed = 0;
  /**
   * Per bucket with points: its number, its first and last index, and per series its lowest and
   * highest index (-1: none).
   */
  private ids: number[] = [];
  private starts: number[] = [];
  private ends: number[] = [];
  private lows: number[] = [];
  private highs: number[] = [];
  private series: ArrayLike<number>[] = [];

  constructor(
    private readonly capacity: number,
    private readonly floor: number,
  ) {}

  /** Takes in the run's points that changed since the last update and says which to draw. */
  update(run: RunData, x: ArrayLike<number>, series: ArrayLike<number>[]): number[] {
    const from = run.changedSince(this.edits);
    const length = run.length;
    this.edits = run.edits;
    this.series = series;
    if (from < this.processed - 1 || this.processed === 0 || from === 0) this.reset();
    else if (from < this.processed) this.reopen(from);
    for (let i = this.processed; i < length; i++) this.add(x[i], i);
    this.processed = length;
    return this.picked();
  }

  private reset(): void {
    Object.assign(this, { origin: NaN, width: 0, processed: 0, ids: [], starts: [], ends: [], lows: [], highs: [] });
  }

  /** Forgets the bucket holding `index` and what follows, to take them in again. */
  private reopen(index: number): void {
    let k = this.starts.length - 1;
    while (k > 0 && this.starts[k] > index) k--;
    this.processed = this.starts[k] ?? 0;
    this.truncate(k);
  }

  private truncate(buckets: number): void {
    const n = this.series.length;
    this.ids.length = this.starts.length = this.ends.length = buckets;
    this.lows.length = this.highs.length = buckets * n;
  }

  private add(xi: number, i: number): void {
    if (!Number.isFinite(xi)) return;
    if (Number.isNaN(this.origin)) this.origin = xi;
    const bucket = this.bucketOf(xi);
    const n = this.series.length;
    if (bucket !== this.ids[this.ids.length - 1]) {
      this.ids.push(bucket);
      this.starts.push(i);
      this.ends.push(i);
      for (let s = 0; s < n; s++) {
        this.lows.push(-1);
        this.highs.push(-1);
      }
    }
    const base = this.lows.length - n;
    for (let s = 0; s < n; s++) {
      const values = this.series[s];
      const v = values[i];
      if (!(v > this.floor)) continue;
      const low = this.lows[base + s],
        high = this.highs[base + s];
      if (low < 0 || v < values[low]) this.lows[base + s] = i;
      if (high < 0 || v > values[high]) this.highs[base + s] = i;
    }
    this.ends[this.ends.length - 1] = i;
  }

  private bucketOf(xi: number): number {
    if (this.width === 0) {
      if (xi === this.origin) return 0;
      this.width = Math.max(2 ** Math.ceil(Math.log2(Math.abs(xi - this.origin) / this.capacity)), 1e-300);
    }
    while ((xi - this.origin) / this.width >= this.capacity) this.merge();
    // x that goes back (a clock set back) joins the last bucket
    return Math.max(Math.floor((xi - this.origin) / this.width), this.ids[this.ids.length - 1] ?? 0);
  }

  /** Doubles the bucket width: each pair of buckets becomes one, its extremes the pair's. */
  private merge(): void {
    const n = this.series.length;
    this.width *= 2;
    let kept = 0;
    for (let k = 0; k < this.ids.length; k++) {
      const id = Math.floor(this.ids[k] / 2);
      if (kept > 0 && this.ids[kept - 1] === id) {
        for (let s = 0; s < n; s++) this.combine(this.series[s], (kept - 1) * n + s, k * n + s);
        this.ends[kept - 1] = this.ends[k];
        continue;
      }
      this.ids[kept] = id;
      this.starts[kept] = this.starts[k];
      this.ends[kept] = this.ends[k];
      for (let s = 0; s < n; s++) {
        this.lows[kept * n + s] = this.lows[k * n + s];
        this.highs[kept * n + s] = this.highs[k * n + s];
      }
      kept++;
    }
    this.truncate(kept);
  }

  private combine(values: ArrayLike<number>, into: number, from: number): void {
    const low = this.lows[from],
      high = this.highs[from];
    if (low >= 0 && (this.lows[into] < 0 || values[low] < values[this.lows[into]])) this.lows[into] = low;
    if (high >= 0 && (this.highs[into] < 0 || values[high] > values[this.highs[into]])) this.highs[into] = high;
  }

  /** The first and last point, and each bucket's extremes, ascending. */
  private picked(): number[] {
    const n = this.series.length;
    const picked = this.starts.length ? [this.starts[0]] : [];
    for (let k = 0; k < this.starts.length; k++) {
      const found = [...this.lows.slice(k * n, k * n + n), ...this.highs.slice(k * n, k * n + n)].sort((a, b) => a - b);
      for (const i of found) if (i > picked[picked.length - 1]) picked.push(i); // -1 (none) and repeats are skipped
    }
    const last = this.ends[this.ends.length - 1];
    if (last > picked[picked.length - 1]) picked.push(last);
    return picked;
  }
}

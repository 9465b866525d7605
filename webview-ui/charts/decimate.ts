/**
 * What a chart draws of a long run: in each pixel column, the lowest and highest point of every
 * series, so that a spike (reward hacking, a KL blow-up) stays visible however many points share
 * the column, and the first and last point so the x range is the data's. Hover and CSV read the
 * full columns; only the drawing is decimated.
 */

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
export function pickPoints(x: ArrayLike<number>, length: number, series: ArrayLike<number>[], floor: number, columns: number, range: XRange): number[] {
  let first = -1, last = -1, before = -1, after = -1, inside = 0;
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
function extremes(x: ArrayLike<number>, first: number, last: number, series: ArrayLike<number>[], floor: number, columns: number, range: XRange, picked: number[]): void {
  const scale = columns / (range.max - range.min || 1);
  const low = new Float64Array(series.length), high = new Float64Array(series.length);
  const lowAt = new Int32Array(series.length), highAt = new Int32Array(series.length);
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
  let lo = 0, hi = picked.length - 1;
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

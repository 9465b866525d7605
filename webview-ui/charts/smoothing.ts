/**
 * TensorBoard's smoothing: an exponential moving average, debiased so the first points are not
 * pulled towards zero. Missing values (NaN) stay missing and do not move the average. A live run
 * only appends, so the average is carried on from where it stopped instead of recomputed.
 */
import { XAxis } from '../../src/protocol/charts';
import { RunData } from './store';

/** Schedules and counters: exact values with no noise to smooth away. */
const UNSMOOTHED = new Set(['learning_rate', 'lr', 'epoch', 'episode', 'objective/kl_coef']);

/**
 * Whether a metric is smoothed: only the noisy per-step training metrics are. Evaluations
 * (`eval_*`, one value per evaluation) and schedules are drawn as they are, so what a chart shows
 * is the value the run had.
 */
export function isSmoothed(metric: string): boolean {
  return !metric.startsWith('eval_') && !UNSMOOTHED.has(metric);
}

/** The smoothing weight for a metric: the chosen one where it applies, else none. */
export function smoothingOf(metric: string, smoothing: number): number {
  return isSmoothed(metric) ? smoothing : 0;
}

/** The average after some points, and how many of them had a value (and a positive one, for log scale). */
interface EmaState {
  average: number;
  debias: number;
  points: number;
  positive: number;
}

const START: EmaState = { average: 0, debias: 0, points: 0, positive: 0 };

/** Smooths values[from..to) into `out`, carrying `state` on; a point whose x is not a number counts as missing. */
function smoothInto(
  values: ArrayLike<number>,
  x: ArrayLike<number>,
  out: Float64Array,
  from: number,
  to: number,
  weight: number,
  state: EmaState,
): void {
  let { average, debias, points, positive } = state;
  for (let i = from; i < to; i++) {
    const v = Number.isFinite(x[i]) ? values[i] : NaN;
    out[i] = v;
    if (Number.isNaN(v)) continue;
    points++;
    if (v > 0) positive++;
    if (!Number.isFinite(v)) continue; // ±Infinity is drawn as it is and does not move the average
    average = average * weight + (1 - weight) * v;
    debias = debias * weight + (1 - weight);
    out[i] = weight === 0 ? v : average / debias;
  }
  Object.assign(state, { average, debias, points, positive });
}

/**
 * One metric of one run, smoothed, kept current as points arrive: only the new points are
 * computed, and the last one again when it got more values. Points replaced further back, another
 * smoothing or another x axis mean a full recomputation.
 */
export class SmoothedLine {
  values = new Float64Array(0);
  private length = 0;
  private edits = -1;
  private weight = NaN;
  private axis: XAxis | undefined;
  /** The state after all but the last point, and after all of them. */
  private beforeLast = { ...START };
  private afterLast = { ...START };

  constructor(
    readonly run: RunData,
    readonly metric: string,
  ) {}

  /** Points with a value; only the positive ones on a log scale. */
  points(logScale: boolean): number {
    return logScale ? this.afterLast.positive : this.afterLast.points;
  }

  /** Brings the line up to the run's points; `x` is the column the axis draws them at. */
  update(weight: number, axis: XAxis, x: ArrayLike<number>): void {
    const { run } = this;
    const series = run.metrics.get(this.metric);
    const settingsChanged = weight !== this.weight || axis !== this.axis;
    let from = settingsChanged ? 0 : Math.min(run.changedSince(this.edits), this.length);
    const to = run.length;
    if (from === this.length && to === this.length && !settingsChanged) return;
    let state: EmaState;
    if (from === this.length && from > 0) state = { ...this.afterLast };
    else if (from === this.length - 1 && from > 0 && to > from) state = { ...this.beforeLast };
    else {
      from = 0;
      state = { ...START };
    }
    this.grow(to, from);
    const values = series?.values ?? new Float64Array(to).fill(NaN);
    smoothInto(values, x, this.values, from, Math.max(from, to - 1), weight, state);
    this.beforeLast = { ...state };
    smoothInto(values, x, this.values, Math.max(from, to - 1), to, weight, state);
    this.afterLast = state;
    Object.assign(this, { length: to, edits: run.edits, weight, axis });
  }

  /** Makes room for `length` values, keeping the first `keep`. */
  private grow(length: number, keep: number): void {
    if (length <= this.values.length) return;
    const grown = new Float64Array(Math.max(length, this.values.length * 2));
    grown.set(this.values.subarray(0, keep));
    this.values = grown;
  }
}

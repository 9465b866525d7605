/**
 * What a chart draws from the runs' columns: its lines (one metric of one run each), each run's x
 * values, the values at the points picked to draw (decimate.ts), and several runs aligned on one x
 * array (uPlot draws one per chart).
 */
import uPlot from 'uplot';
import { XAxis } from '../../src/protocol/charts';
import { SmoothedLine } from './smoothing';
import { RunData } from './store';

/** One metric of one run in a chart. */
export interface Line {
  smoothed: SmoothedLine;
  /** The x of each of the run's points. */
  x: ArrayLike<number>;
  /** Which of the theme's line colours: by run, then by the metric's place in the chart. */
  colour: number;
  /** Drawn smoothed, its raw values faded behind (only noisy training metrics are). */
  smooth: boolean;
}

/**
 * The x of each point of a run: its step, its `episode` metric (the step where none is logged), or
 * seconds since its first point.
 */
export function xColumn(run: RunData, axis: XAxis): ArrayLike<number> {
  if (axis === 'episode') return run.metrics.get('episode')?.values ?? run.steps.values;
  if (axis === 'step') return run.steps.values;
  const times = run.times.values;
  return Float64Array.from({ length: run.length }, (_, i) => times[i] - times[0]);
}

/** The values at the picked points, null where there is none (or none a log scale can show). */
export function valuesAt(values: ArrayLike<number>, picked: number[], logScale: boolean): (number | null)[] {
  const out = new Array<number | null>(picked.length);
  for (let n = 0; n < picked.length; n++) {
    const v = values[picked[n]];
    out[n] = Number.isNaN(v) || (logScale && v <= 0) ? null : v;
  }
  return out;
}

/** One x array for all runs, each column's values at those x (null where its run has no point). */
export function align(runs: { x: number[]; columns: (number | null)[][] }[]): uPlot.AlignedData {
  if (runs.length <= 1) return [runs[0]?.x ?? [], ...(runs[0]?.columns ?? [])];
  const xs = [...new Set(runs.flatMap((r) => r.x))].sort((a, b) => a - b);
  const position = new Map(xs.map((x, i) => [x, i]));
  return [
    xs,
    ...runs.flatMap((run) =>
      run.columns.map((column) => {
        const out = new Array<number | null>(xs.length).fill(null);
        run.x.forEach((x, n) => (out[position.get(x)!] = column[n]));
        return out;
      }),
    ),
  ];
}

/** The lines grouped by run, in order. */
export function byRun(lines: Line[]): Line[][] {
  const groups = new Map<RunData, Line[]>();
  for (const line of lines) groups.set(line.smoothed.run, [...(groups.get(line.smoothed.run) ?? []), line]);
  return [...groups.values()];
}

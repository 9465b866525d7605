/**
 * One chart card: a uPlot of some metrics for every run shown, raw values faded behind the
 * smoothed line, and the chart's CSV and PNG exports. Runs are aligned on the union of their x
 * values (uPlot draws one x array per chart); a single run's points are used as they are.
 */
import uPlot from 'uplot';
import { XAxis } from '../../src/protocol/charts';
import { formatMetric } from '../../src/views/format';
import { ChartSpec } from './dashboards';
import { smooth } from './smoothing';
import { RunData } from './store';
import { Theme, currentTheme, faded } from './theme';

export interface ChartSettings {
  smoothing: number;
  xAxis: XAxis;
  logScale: boolean;
}

export interface ChartActions {
  exportCsv(chart: Chart): void;
  exportPng(chart: Chart): void;
  remove(chart: Chart): void;
}

const HEIGHT = 220;

/** A run's points with a usable x, for one chart. */
interface Line {
  run: RunData;
  metric: string;
  /** Which of the theme's line colours: by run, then by the metric's place in the chart. */
  colour: number;
  /** Indices into the run's columns. */
  index: number[];
  x: number[];
  raw: (number | null)[];
  smoothed: (number | null)[];
}

export class Chart {
  readonly element: HTMLElement;
  private readonly plotHost: HTMLElement;
  private plot: uPlot | undefined;
  /** What the plot's options were built from; data changes alone only call setData. */
  private shape = '';
  private drawn = '';

  constructor(readonly spec: ChartSpec, actions: ChartActions) {
    this.element = document.createElement('section');
    this.element.className = 'chart';
    this.element.dataset.testid = 'chart';
    this.element.dataset.chart = spec.title;
    const header = document.createElement('header');
    const title = document.createElement('h3');
    title.textContent = spec.title;
    header.append(title, button('CSV', 'Export as CSV', () => actions.exportCsv(this)), button('PNG', 'Export as PNG', () => actions.exportPng(this)), button('×', 'Remove chart', () => actions.remove(this)));
    this.plotHost = document.createElement('div');
    this.plotHost.className = 'plot';
    this.element.append(header, this.plotHost);
  }

  /** Redraws if the runs' data or the settings changed since the last draw, or when told to (a theme change). */
  update(runs: RunData[], settings: ChartSettings, rebuild = false): void {
    const drawn = JSON.stringify([runs.map((r) => [r.run.key, r.version]), settings]);
    if (drawn === this.drawn && !rebuild) return;
    this.drawn = drawn;
    const lines = this.lines(runs, settings);
    const data = align(lines, settings);
    this.element.dataset.points = String(lines.reduce((n, l) => n + l.raw.filter((v) => v !== null).length, 0));
    const shape = JSON.stringify([lines.map((l) => [l.run.run.name, l.metric]), settings.smoothing > 0, settings.xAxis, settings.logScale]);
    if (!this.plot || shape !== this.shape || rebuild) {
      this.shape = shape;
      this.plot?.destroy();
      this.plot = new uPlot(this.options(lines, settings, currentTheme()), data, this.plotHost);
    } else {
      this.plot.setData(data);
    }
  }

  resize(): void {
    this.plot?.setSize({ width: this.width(), height: HEIGHT });
  }

  /** Every value charted, one row per run, metric and step: run,metric,step,time,value,smoothed. */
  csv(runs: RunData[], settings: ChartSettings): string {
    const rows = ['run,metric,step,time,value,smoothed'];
    for (const line of this.lines(runs, { ...settings, logScale: false, xAxis: 'step' })) {
      line.index.forEach((i, n) => {
        if (line.raw[n] === null) return;
        rows.push([csvField(line.run.run.name), csvField(line.metric), line.run.steps.values[i], line.run.times.values[i], line.raw[n], line.smoothed[n]].join(','));
      });
    }
    return rows.join('\n') + '\n';
  }

  /** The plot as drawn (axes and lines), on the theme's background, as a PNG data URL. */
  png(): string | undefined {
    const source = this.plot?.ctx.canvas;
    if (!source) return undefined;
    const canvas = document.createElement('canvas');
    canvas.width = source.width;
    canvas.height = source.height;
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = currentTheme().background;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(source, 0, 0);
    return canvas.toDataURL('image/png');
  }

  destroy(): void {
    this.plot?.destroy();
    this.element.remove();
  }

  private lines(runs: RunData[], settings: ChartSettings): Line[] {
    const lines: Line[] = [];
    runs.forEach((run, r) => {
      const xs = xColumn(run, settings.xAxis);
      const index: number[] = [];
      for (let i = 0; i < run.length; i++) if (Number.isFinite(xs[i])) index.push(i);
      const x = index.map((i) => xs[i]);
      this.spec.metrics.forEach((metric, m) => {
        const series = run.metrics.get(metric);
        if (!series) return;
        const values = Float64Array.from(index, (i) => series.values[i]);
        const raw = Array.from(values, (v) => (Number.isNaN(v) || (settings.logScale && v <= 0) ? null : v));
        const smoothed = smooth(values, values.length, settings.smoothing).map((v) => (settings.logScale && v !== null && v <= 0 ? null : v));
        lines.push({ run, metric, colour: r * this.spec.metrics.length + m, index, x, raw, smoothed });
      });
    });
    return lines;
  }

  private options(lines: Line[], settings: ChartSettings, theme: Theme): uPlot.Options {
    const axis = { stroke: theme.foreground, grid: { stroke: theme.grid, width: 1 }, ticks: { stroke: theme.grid, width: 1 } };
    const runs = new Set(lines.map((l) => l.run.run.key)).size;
    const series: uPlot.Series[] = [{ label: settings.xAxis === 'time' ? 'seconds' : settings.xAxis, value: (_u, v) => (v == null ? '' : formatMetric(v)) }];
    for (const line of lines) {
      const label = runs > 1 ? `${line.run.run.name} · ${line.metric}` : line.metric;
      const colour = theme.line(line.colour);
      const value = (_u: uPlot, v: number | null) => (v == null ? '–' : formatMetric(v));
      if (settings.smoothing > 0) {
        series.push({ label, stroke: colour, width: 2, spanGaps: true, value });
        series.push({ label: `${label} (raw)`, stroke: faded(colour), width: 1, spanGaps: true, value });
      } else {
        series.push({ label, stroke: colour, width: 1.5, spanGaps: true, value });
      }
    }
    return {
      width: this.width(),
      height: HEIGHT,
      scales: { x: { time: false }, y: { distr: settings.logScale ? 3 : 1 } },
      axes: [{ ...axis }, { ...axis, size: 60, values: (_u, splits) => splits.map((v) => formatMetric(v)) }],
      series,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
  }

  private width(): number {
    return Math.max(200, this.plotHost.clientWidth || this.element.clientWidth || 400);
  }
}

/** The x of each point of a run: its step, its `episode` metric (the step where none is logged), or seconds since its first point. */
function xColumn(run: RunData, axis: XAxis): ArrayLike<number> {
  if (axis === 'episode') return run.metrics.get('episode')?.values ?? run.steps.values;
  if (axis === 'step') return run.steps.values;
  const times = run.times.values;
  return Float64Array.from({ length: run.length }, (_, i) => times[i] - times[0]);
}

/** uPlot's data: one x array for all lines, each line's values at those x (null where it has none). */
function align(lines: Line[], settings: ChartSettings): uPlot.AlignedData {
  const columns = (line: Line) => (settings.smoothing > 0 ? [line.smoothed, line.raw] : [line.raw]);
  const distinctX = new Set(lines.map((l) => l.x));
  if (distinctX.size <= 1) return [lines[0]?.x ?? [], ...lines.flatMap(columns)];
  const all = Float64Array.from(lines.flatMap((l) => l.x)).sort();
  const xs: number[] = [];
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[i - 1]) xs.push(all[i]);
  const at = (line: Line, column: (number | null)[]) => {
    const out = new Array<number | null>(xs.length).fill(null);
    let j = 0;
    line.x.forEach((x, n) => {
      while (xs[j] < x) j++;
      out[j] = column[n];
    });
    return out;
  };
  return [xs, ...lines.flatMap((line) => columns(line).map((column) => at(line, column)))];
}

function button(text: string, title: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.textContent = text;
  b.title = title;
  b.addEventListener('click', onClick);
  return b;
}

function csvField(text: string): string {
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

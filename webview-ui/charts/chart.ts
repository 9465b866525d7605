/**
 * One chart card: a uPlot of some metrics for every run shown, raw values faded behind the
 * smoothed line, and the chart's CSV and PNG exports (chart-export.ts). What is drawn is decimated to the pixel
 * columns (decimate.ts); several runs are aligned on the union of their drawn x values (uPlot
 * draws one x array per chart; plot-data.ts). The legend on hover and the CSV read the full columns.
 */
import uPlot from 'uplot';
import { XAxis } from '../../src/protocol/charts';
import { formatMetric } from '../../src/shared/format';
import { ChartSpec } from '../../src/shared/stages';
import { Decimator, XRange, nearestPoint, pickPoints } from './decimate';
import { SmoothedLine, smoothingOf } from './smoothing';
import { RunData } from './store';
import { Theme, currentTheme, faded } from './theme';
import { LineStyle, chartCsv, chartPng } from './chart-export';
import { WHOLE_STEPS, fitTickLabels, formatTick } from './axis-ticks';
import { Line, align, byRun, valuesAt, xColumn } from './plot-data';
import { t } from '../shared/l10n';

export interface ChartSettings {
  smoothing: number;
  xAxis: XAxis;
  logScale: boolean;
}

export interface ChartActions {
  exportCsv(chart: Chart): void;
  exportPng(chart: Chart): void;
  remove(chart: Chart): void;
  toggleLogScale(chart: Chart): void;
  /** The chart needs drawing again (it was zoomed or resized). */
  changed(chart: Chart): void;
}

const HEIGHT = 220;

/** Where the legend reads a series' value under the cursor: the run's full columns and the points drawn of them. */
interface LegendSource {
  x: ArrayLike<number>;
  values: ArrayLike<number>;
  picked: number[];
  /** The run's points (the columns may be longer). */
  length: number;
}

export class Chart {
  readonly element: HTMLElement;
  /** Set from an IntersectionObserver: a chart scrolled out of view keeps its data current but is not drawn. */
  visible = true;
  private readonly plotHost: HTMLElement;
  private plot: uPlot | undefined;
  /** What the plot's options were built from; data changes alone only call setData. */
  private shape = '';
  private computed = '';
  private drawn = '';
  /** When it was last drawn: the charts that waited longest are drawn first. */
  drawnAt = 0;
  private settings: ChartSettings = { smoothing: 0, xAxis: 'step', logScale: false };
  private points = 0;
  private rebuild = false;
  private lines: Line[] = [];
  private smoothed = new Map<string, SmoothedLine>();
  private decimators = new Map<RunData, { key: string; decimator: Decimator }>();
  /** The plot's width as last laid out (reading it from the DOM on each frame would force a layout). */
  private hostWidth = 0;
  private readonly resized: ResizeObserver;
  private legend: LegendSource[] = [];
  private readonly logButton: HTMLButtonElement;
  /** The x range dragged to, drawn at full detail; undefined when the whole run is shown. */
  private zoom: XRange | undefined;

  constructor(
    readonly spec: ChartSpec,
    private readonly actions: ChartActions,
  ) {
    this.element = document.createElement('section');
    this.element.className = 'chart';
    this.element.dataset.testid = 'chart';
    this.element.dataset.chart = spec.title;
    const header = document.createElement('header');
    const title = document.createElement('h3');
    title.textContent = spec.title;
    this.logButton = button(t('Log'), t('Log scale (y axis)'), () => actions.toggleLogScale(this));
    this.logButton.setAttribute('aria-pressed', 'false');
    header.append(
      title,
      this.logButton,
      button('CSV', t('Export as CSV'), () => actions.exportCsv(this)),
      button('PNG', t('Export as PNG'), () => actions.exportPng(this)),
      button('×', t('Remove chart'), () => actions.remove(this)),
    );
    this.plotHost = document.createElement('div');
    this.plotHost.className = 'plot';
    this.element.append(header, this.plotHost);
    this.resized = new ResizeObserver(([entry]) => {
      this.hostWidth = entry.contentRect.width;
      actions.changed(this);
    });
    this.resized.observe(this.plotHost);
  }

  /**
   * Brings the lines up to the runs' data (only what changed is recomputed). A chart out of view
   * counts its points at once; one in view when it is drawn, so the count says what it shows.
   */
  update(runs: RunData[], settings: ChartSettings, rebuild = false): void {
    this.rebuild ||= rebuild;
    this.settings = settings;
    if (this.logButton.getAttribute('aria-pressed') !== String(settings.logScale))
      this.logButton.setAttribute('aria-pressed', String(settings.logScale));
    const computed = JSON.stringify([runs.map((r) => [r.run.key, r.version]), settings]);
    if (computed !== this.computed) {
      this.computed = computed;
      this.lines = this.updateLines(runs, settings);
      this.points = this.lines.reduce((n, l) => n + l.smoothed.points(settings.logScale), 0);
    }
    if (!this.visible) this.showPoints();
  }

  /**
   * Whether the chart is in view and its lines, settings, width or zoom changed since it was drawn, or
   * it must be rebuilt (a theme change).
   */
  get stale(): boolean {
    return this.visible && (this.rebuild || this.drawnKey() !== this.drawn);
  }

  draw(): void {
    this.drawn = this.drawnKey();
    this.drawnAt = performance.now();
    this.showPoints();
    this.plotLines(this.settings);
  }

  /** The point count, for tests and the e2e suite; written only when it changed (a write is a DOM mutation). */
  private showPoints(): void {
    const points = String(this.points);
    if (this.element.dataset.points !== points) this.element.dataset.points = points;
  }

  private resize(): void {
    this.plot?.setSize({ width: this.width(), height: HEIGHT });
  }

  /** Every value, one row per run, metric and step: run,metric,step,time,value,smoothed. */
  csv(runs: RunData[], settings: ChartSettings): string {
    return chartCsv(this.spec.metrics, runs, settings.smoothing);
  }

  /** The chart as a PNG data URL (chart-export.ts). */
  png(): string | undefined {
    return this.plot && chartPng(this.plot, this.spec.title, this.lineStyles(currentTheme()));
  }

  destroy(): void {
    this.resized.disconnect();
    this.plot?.destroy();
    this.element.remove();
  }

  /** The chart's lines, each smoothed line kept from the last update so only new points are computed. */
  private updateLines(runs: RunData[], settings: ChartSettings): Line[] {
    const lines: Line[] = [];
    const smoothed = new Map<string, SmoothedLine>();
    runs.forEach((run, r) => {
      const x = xColumn(run, settings.xAxis);
      this.spec.metrics.forEach((metric, m) => {
        if (!run.metrics.has(metric)) return;
        const id = JSON.stringify([run.run.key, metric]);
        const kept = this.smoothed.get(id);
        const line = kept?.run === run ? kept : new SmoothedLine(run, metric);
        const weight = smoothingOf(metric, settings.smoothing);
        line.update(weight, settings.xAxis, x);
        smoothed.set(id, line);
        lines.push({ smoothed: line, x, colour: r * this.spec.metrics.length + m, smooth: weight > 0 });
      });
    });
    this.smoothed = smoothed;
    return lines;
  }

  private drawnKey(): string {
    return JSON.stringify([this.computed, this.width(), this.zoom]);
  }

  private plotLines(settings: ChartSettings): void {
    const shape = JSON.stringify([
      this.lines.map((l) => [l.smoothed.run.run.name, l.smoothed.metric, l.smooth]),
      settings.xAxis,
      settings.logScale,
    ]);
    const rebuild = !this.plot || shape !== this.shape || this.rebuild;
    if (rebuild) this.zoom = undefined;
    const data = this.plotData(settings);
    this.element.dataset.drawn = String(data[0].length);
    if (this.plot && !rebuild) {
      if (this.plot.width !== this.width()) this.resize();
      this.plot.setData(data, !this.zoom);
      return;
    }
    this.shape = shape;
    this.rebuild = false;
    this.plot?.destroy();
    this.plot = new uPlot(this.options(settings, currentTheme()), data, this.plotHost);
  }

  /** uPlot's data: the points drawn of each run, aligned on one x array; the legend's sources along. */
  private plotData(settings: ChartSettings): uPlot.AlignedData {
    const columns = Math.max(1, this.width() - 60);
    const floor = settings.logScale ? 0 : -Infinity;
    const drawn: { x: number[]; columns: (number | null)[][] }[] = [];
    const decimators = new Map<RunData, { key: string; decimator: Decimator }>();
    this.legend = [];
    for (const lines of byRun(this.lines)) {
      const { run } = lines[0].smoothed;
      // Points are picked by the raw values; the smoothed line is drawn through the same ones.
      const raws = lines.map((l) => run.metrics.get(l.smoothed.metric)!.values);
      const series = lines.flatMap((l, n) => (l.smooth ? [l.smoothed.values, raws[n]] : [raws[n]]));
      const x = lines[0].x;
      const key = JSON.stringify([settings.xAxis, settings.logScale, columns, lines.map((l) => l.smoothed.metric)]);
      const kept = this.decimators.get(run);
      const decimator = kept?.key === key ? kept.decimator : new Decimator(columns, floor);
      decimators.set(run, { key, decimator });
      const picked = this.zoom
        ? pickPoints(x, run.length, raws, floor, columns, this.zoom)
        : decimator.update(run, x, raws);
      const { length } = run;
      if (!this.legend.length) this.legend.push({ x, values: x, picked, length });
      this.legend.push(...series.map((values) => ({ x, values, picked, length })));
      drawn.push({
        x: picked.map((i) => x[i]),
        columns: series.map((values) => valuesAt(values, picked, settings.logScale)),
      });
    }
    this.decimators = decimators;
    return align(drawn);
  }

  /**
   * The value under the cursor from the full columns (the nearest point of the series' run); away
   * from the plot, the run's last value, so the legend always reads something.
   */
  private legendValue(u: uPlot, value: number | null, s: number, logScale: boolean): string {
    const source = this.legend[s];
    const left = u.cursor.left;
    const shown = (i: number) =>
      i >= 0 && !Number.isNaN(source.values[i]) && !(s > 0 && logScale && source.values[i] <= 0);
    if (source) {
      const hovered = left !== undefined && left >= 0;
      let i = hovered ? nearestPoint(source.x, source.picked, u.posToVal(left, 'x')) : source.length - 1;
      if (!hovered) while (i >= 0 && !shown(i)) i--;
      value = shown(i) ? source.values[i] : null;
    }
    return value === null ? (s === 0 ? '' : '–') : formatMetric(value);
  }

  /** A drag zooms in (drawn at full detail for the range); a double click shows everything again. */
  private scaled(u: uPlot): void {
    const { min, max } = u.scales.x;
    const xs = u.data[0];
    if (min === undefined || max === undefined || !xs.length) return;
    const zoom = min <= xs[0] && max >= xs[xs.length - 1] ? undefined : { min, max };
    if (zoom?.min === this.zoom?.min && zoom?.max === this.zoom?.max) return;
    this.zoom = zoom;
    this.actions.changed(this);
  }

  private options(settings: ChartSettings, theme: Theme): uPlot.Options {
    const axis = {
      stroke: theme.foreground,
      grid: { stroke: theme.grid, width: 1 },
      ticks: { stroke: theme.grid, width: 1 },
    };
    const value = (u: uPlot, v: number | null, s: number) => this.legendValue(u, v, s, settings.logScale);
    const series: uPlot.Series[] = [
      { label: settings.xAxis === 'time' ? 'seconds' : settings.xAxis, value },
      ...this.lineStyles(theme).map(({ label, colour, width }) => ({
        label,
        stroke: colour,
        width,
        spanGaps: true,
        value,
      })),
    ];
    const xLabel = settings.xAxis === 'time' ? 'seconds' : settings.xAxis;
    const ticks = (which: 'xTicks' | 'yTicks') => (_u: uPlot, splits: number[]) => this.showTicks(which, splits);
    return {
      width: this.width(),
      height: HEIGHT,
      scales: { x: { time: false }, y: { distr: settings.logScale ? 3 : 1 } },
      axes: [
        // Steps and episodes are whole numbers: ticks at 1, 2, 5, 10…, never 1.2.
        { ...axis, label: xLabel, values: ticks('xTicks'), ...(settings.xAxis !== 'time' && { incrs: WHOLE_STEPS }) },
        { ...axis, label: this.spec.title, size: fitTickLabels, values: ticks('yTicks') },
      ],
      series,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      hooks: { setScale: [(u, key) => key === 'x' && this.scaled(u)] },
    };
  }

  /** An axis's tick labels, also kept on the element for tests and the e2e suite (written when they change). */
  private showTicks(which: 'xTicks' | 'yTicks', splits: number[]): string[] {
    const labels = splits.map(formatTick);
    const text = labels.join(' ');
    if (this.element.dataset[which] !== text) this.element.dataset[which] = text;
    return labels;
  }

  /** How each series is drawn and named, in uPlot's order: with smoothing, each line's raw values after it, faded. */
  private lineStyles(theme: Theme): LineStyle[] {
    const runs = new Set(this.lines.map((l) => l.smoothed.run)).size;
    return this.lines.flatMap((line) => {
      const label = runs > 1 ? `${line.smoothed.run.run.name} · ${line.smoothed.metric}` : line.smoothed.metric;
      const colour = theme.line(line.colour);
      if (!line.smooth) return [{ label, colour, width: 1.5, raw: false }];
      return [
        { label, colour, width: 2, raw: false },
        { label: `${label} (raw)`, colour: faded(colour), width: 1, raw: true },
      ];
    });
  }

  private width(): number {
    this.hostWidth ||= this.plotHost.clientWidth;
    return Math.max(200, this.hostWidth || 400);
  }
}

function button(text: string, title: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.textContent = text;
  b.title = title;
  b.addEventListener('click', onClick);
  return b;
}

/** A chart's exports: every value as CSV, and the chart as drawn, with its title and legend, as a PNG. */
import uPlot from 'uplot';
import { SmoothedLine, smoothingOf } from './smoothing';
import { RunData } from './store';
import { currentTheme } from './theme';

export interface LineStyle {
  label: string;
  colour: string;
  width: number;
  /** The raw values behind a smoothed line. */
  raw: boolean;
}

/**
 * Every value of `metrics`, one row per run, metric and step: run,metric,step,time,value,smoothed
 * (the value itself for a metric that is not smoothed).
 */
export function chartCsv(metrics: string[], runs: RunData[], smoothing: number): string {
  const rows = ['run,metric,step,time,value,smoothed'];
  for (const run of runs) {
    for (const metric of metrics) {
      const raw = run.metrics.get(metric)?.values;
      if (!raw) continue;
      const line = new SmoothedLine(run, metric);
      line.update(smoothingOf(metric, smoothing), 'step', run.steps.values);
      for (let i = 0; i < run.length; i++) {
        if (Number.isNaN(raw[i]) || !Number.isFinite(run.steps.values[i])) continue;
        rows.push(
          [
            csvField(run.run.name),
            csvField(metric),
            run.steps.values[i],
            run.times.values[i],
            raw[i],
            line.values[i],
          ].join(','),
        );
      }
    }
  }
  return rows.join('\n') + '\n';
}

/**
 * A chart as a PNG data URL: its title, the plot as drawn (axes and lines) and a legend of its
 * lines, on the theme's background, at the screen's pixel density.
 */
export function chartPng(plot: uPlot, titleText: string, lines: LineStyle[]): string {
  const theme = currentTheme();
  const scale = plot.ctx.canvas.width / plot.width;
  const font = (size: number, weight = 'normal') =>
    `${weight} ${size * scale}px ${getComputedStyle(document.body).fontFamily || 'sans-serif'}`;
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d')!;
  // The legend flows in rows under the plot; measured first, since the canvas size comes from it.
  ctx.font = font(12);
  const pad = 8 * scale,
    swatch = 16 * scale,
    row = 18 * scale,
    title = 24 * scale;
  const entries = lines.filter((l) => !l.raw);
  const placed: { x: number; y: number; entry: LineStyle }[] = [];
  let x = pad,
    y = 0;
  for (const entry of entries) {
    const width = swatch + 6 * scale + ctx.measureText(entry.label).width + 16 * scale;
    if (x > pad && x + width > plot.ctx.canvas.width - pad) {
      x = pad;
      y += row;
    }
    placed.push({ x, y, entry });
    x += width;
  }
  canvas.width = plot.ctx.canvas.width;
  canvas.height = title + plot.ctx.canvas.height + y + row + pad;
  ctx.fillStyle = theme.background;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = theme.foreground;
  ctx.textBaseline = 'middle';
  ctx.font = font(13, '600');
  ctx.fillText(titleText, pad, title / 2);
  ctx.drawImage(plot.ctx.canvas, 0, title);
  ctx.font = font(12);
  const top = title + plot.ctx.canvas.height + row / 2;
  for (const { x, y, entry } of placed) {
    ctx.fillStyle = entry.colour;
    ctx.fillRect(x, top + y - 1.5 * scale, swatch, 3 * scale);
    ctx.fillStyle = theme.foreground;
    ctx.fillText(entry.label, x + swatch + 6 * scale, top + y);
  }
  return canvas.toDataURL('image/png');
}

function csvField(text: string): string {
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

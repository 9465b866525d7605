/** The axes' ticks: whole-number spacings for steps, labels in their shortest exact form, axes as wide as them. */
import uPlot from 'uplot';

/** Tick spacings of whole numbers: 1, 2, 5, 10, 20, 50… */
export const WHOLE_STEPS = Array.from({ length: 30 }, (_, i) => [1, 2, 5][i % 3] * 10 ** Math.floor(i / 3));

/** An axis as wide as its longest tick label, so no label is cut off (uPlot calls it as the ticks settle). */
export function fitTickLabels(u: uPlot, values: string[] | null, axisIndex: number, cycle: number): number {
  const axis = u.axes[axisIndex] as uPlot.Axis & { _size?: number; font: [string] };
  if (cycle > 1 && axis._size) return axis._size;
  const longest = (values ?? []).reduce((a, v) => (v.length > a.length ? v : a), '');
  u.ctx.font = axis.font[0];
  const text = u.ctx.measureText(longest).width / devicePixelRatio;
  return Math.ceil((axis.ticks?.size ?? 10) + (axis.gap ?? 5) + text + 4);
}

/** An axis tick: ticks are round numbers, so the shortest form that is exact (1.5, 0.001, 2e-7) reads best. */
export function formatTick(v: number | null): string {
  return v === null ? '' : String(Number(v.toPrecision(6)));
}

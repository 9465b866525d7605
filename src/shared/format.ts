/** How numbers and durations read in the views, messages and the log. */
export function formatMetric(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) || Math.abs(v) >= 1000) return v.toFixed(0);
  return Math.abs(v) < 1e-2 ? v.toExponential(2) : v.toFixed(4);
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function formatMetrics(values: Record<string, number | null>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k} ${formatMetric(v)}`)
    .join('  ');
}

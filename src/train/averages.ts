/** What the training loop logs: values averaged over a logging window or an eval set. */
import type { StepResult } from './stage';

/** Weighted means of named values; names starting "min_" or "max_" keep the extreme instead. */
export class Averages {
  private readonly totals = new Map<string, number>();
  private weight = 0;

  add(values: Record<string, number>, weight = 1): void {
    for (const [k, v] of Object.entries(values)) {
      const extreme = extremeOf(k),
        prev = this.totals.get(k);
      this.totals.set(k, extreme ? (prev === undefined ? v : extreme(prev, v)) : (prev ?? 0) + v * weight);
    }
    this.weight += weight;
  }

  values(prefix = ''): Record<string, number> {
    return Object.fromEntries([...this.totals].map(([k, v]) => [prefix + k, extremeOf(k) ? v : v / this.weight]));
  }
}

const extremeOf = (name: string) =>
  name.startsWith('min_') ? Math.min : name.startsWith('max_') ? Math.max : undefined;

/** What a logging window gathers: averaged metrics, the latest of the rest, and tokens over its wall time. */
export class LogWindow {
  private readonly averaged = new Averages();
  private latest: Record<string, number> = {};
  private tokens?: number;
  private readonly start = Date.now();

  add(result: StepResult): void {
    if (result.averaged) this.averaged.add(result.averaged);
    Object.assign(this.latest, result.latest);
    if (result.tokens !== undefined) this.tokens = (this.tokens ?? 0) + result.tokens;
  }

  values(): Record<string, number> {
    const seconds = (Date.now() - this.start) / 1000;
    return {
      ...this.averaged.values(),
      ...this.latest,
      ...(this.tokens !== undefined && { tokens_per_second: this.tokens / seconds }),
    };
  }
}

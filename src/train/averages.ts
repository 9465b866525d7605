/** Weighted means of named values (over a logging window, or an eval set); names starting "min_" or "max_" keep the extreme instead. */
export class Averages {
  private readonly totals = new Map<string, number>();
  private weight = 0;

  add(values: Record<string, number>, weight = 1): void {
    for (const [k, v] of Object.entries(values)) {
      const extreme = extremeOf(k), prev = this.totals.get(k);
      this.totals.set(k, extreme ? (prev === undefined ? v : extreme(prev, v)) : (prev ?? 0) + v * weight);
    }
    this.weight += weight;
  }

  values(prefix = ''): Record<string, number> {
    return Object.fromEntries([...this.totals].map(([k, v]) => [prefix + k, extremeOf(k) ? v : v / this.weight]));
  }
}

const extremeOf = (name: string) => (name.startsWith('min_') ? Math.min : name.startsWith('max_') ? Math.max : undefined);

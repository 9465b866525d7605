/**
 * Seeded pseudo-random numbers (mulberry32). Everything random in a run — weight init, data
 * shuffling, sampling — draws from one of these, so a run is reproducible from its seed and its
 * state can be saved in a checkpoint and restored on resume.
 */
export class Rng {
  private s: number;
  private spareNormal: number | undefined;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** The generator's whole state, for checkpoints. */
  get state(): { s: number; spareNormal?: number } {
    return { s: this.s, spareNormal: this.spareNormal };
  }

  static fromState(state: { s: number; spareNormal?: number }): Rng {
    const r = new Rng(0);
    r.s = state.s >>> 0;
    r.spareNormal = state.spareNormal;
    return r;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box–Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const z = this.spareNormal;
      this.spareNormal = undefined;
      return z;
    }
    const u = 1 - this.next(); // (0, 1], so log(u) is finite
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    return shuffleWith(items, () => this.next());
  }
}

/** Fisher–Yates shuffle in place with uniform draws in [0, 1) from `random`; returns the same array. */
export function shuffleWith<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/**
 * A pair as the labeling view shows it: which response is on the left (drawn once per pair and
 * kept while the session lives, so no side is always first), where it is among its prompt's pairs,
 * and since when it is shown, for the time per label.
 */
import type { Choice, ShownPair } from '../../protocol/labeling';
import type { Label } from '../../data/preference-record';
import type { ComparisonPair } from '../../data/queue';

/** The stored label for a choice about the responses as shown. */
export function storedLabel(choice: Choice, swapped: boolean): Label {
  if (choice === 'left') return swapped ? 'b' : 'a';
  if (choice === 'right') return swapped ? 'a' : 'b';
  return choice;
}

/** Where a pair is among the pairs of its prompt, in queue order. */
export function positionOf(pair: ComparisonPair, pairs: ComparisonPair[]): { index: number; count: number } {
  const prompt = JSON.stringify(pair.prompt);
  const same = pairs.filter((p) => JSON.stringify(p.prompt) === prompt);
  return { index: same.indexOf(pair) + 1, count: same.length };
}

export class PairSides {
  /** Per pair, whether its response B is shown on the left. */
  private readonly swapped = new Map<string, boolean>();
  /** When each pair (or check, by its history entry) was first shown. */
  private readonly shownAt = new Map<string, number>();

  constructor(
    private readonly random: () => number,
    private readonly now: () => number,
  ) {}

  isSwapped(pairId: string): boolean {
    if (!this.swapped.has(pairId)) this.swapped.set(pairId, this.random() < 0.5);
    return this.swapped.get(pairId)!;
  }

  /** The pair with its responses on the sides drawn for it (or, for a check, the other way round). */
  shown(pair: ComparisonPair, swapped = this.isSwapped(pair.pair_id)): ShownPair {
    const [left, right] = swapped ? [pair.response_b, pair.response_a] : [pair.response_a, pair.response_b];
    return { pairId: pair.pair_id, prompt: pair.prompt, left, right, ...(pair.source && { source: pair.source }) };
  }

  /** Notes when what `entry` labels was first shown. */
  markShown(entry: string): void {
    if (!this.shownAt.has(entry)) this.shownAt.set(entry, this.now());
  }

  /** Seconds since what `entry` labels was first shown, to a tenth. */
  secondsOn(entry: string): number | undefined {
    const shown = this.shownAt.get(entry);
    this.shownAt.delete(entry);
    return shown === undefined ? undefined : Math.round((this.now() - shown) / 100) / 10;
  }
}

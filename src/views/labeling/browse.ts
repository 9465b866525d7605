/**
 * Finding pairs in the selected queue and opening one: the search's matches for the view, and the
 * pair the person opened, shown instead of the next unlabeled one until it is labeled.
 */
import type { Choice, QueueState, StatusFilter } from '../../protocol/labeling';
import type { Label, PreferenceRecord } from '../../data/preference-record';
import type { ComparisonPair } from '../../data/queue';
import { filterPairs, labelsById, promptText, statusOf } from '../../data/queue-filter';

/** How many matches the view lists; the count says how many there are. */
const LISTED = 50;
/** How much of each prompt the list shows. */
const SNIPPET = 120;

/** The choice, as shown, that a stored label stands for. */
export function shownChoice(label: Label, swapped: boolean): Choice {
  if (label === 'a') return swapped ? 'right' : 'left';
  if (label === 'b') return swapped ? 'left' : 'right';
  return label;
}

export class QueueBrowser {
  private query: { text: string; status: StatusFilter } | undefined;
  private opened: string | undefined;

  find(text: string, status: StatusFilter): void {
    this.query = { text, status };
  }

  /** Shows this pair until it is labeled; undefined returns to the queue's order. */
  open(pairId: string | undefined): void {
    this.opened = pairId;
  }

  /** Another queue was picked: its search starts afresh. */
  reset(): void {
    [this.query, this.opened] = [undefined, undefined];
  }

  /** The opened pair, if it is in the queue. */
  openedPair(pairs: readonly ComparisonPair[]): ComparisonPair | undefined {
    return this.opened === undefined ? undefined : pairs.find((p) => p.pair_id === this.opened);
  }

  isOpened(pairId: string): boolean {
    return this.opened === pairId;
  }

  /** The matches of the latest search, for the view; undefined before any search. */
  found(pairs: readonly ComparisonPair[], records: readonly PreferenceRecord[]): QueueState['found'] {
    if (!this.query) return undefined;
    const labels = labelsById(records);
    const matches = filterPairs(pairs, labels, this.query);
    return {
      count: matches.length,
      pairs: matches.slice(0, LISTED).map((pair) => ({
        pairId: pair.pair_id,
        prompt: promptText(pair.prompt).replace(/\s+/g, ' ').trim().slice(0, SNIPPET),
        status: statusOf(pair, labels),
      })),
    };
  }
}

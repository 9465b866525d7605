/**
 * A reward model's margins on a labeling queue, and what they say about the person's labels. The
 * margins are cached in the model's run folder (margins.jsonl), one line per pair and model:
 *
 *   {"pair_id": "5d0c…", "model": "/…/.rlhf/runs/…-rm/model", "margin": 1.73}
 *
 * `margin` is r(prompt, response_a) − r(prompt, response_b) in the model's (normalised) reward
 * units, or for a DPO policy its implicit reward margin β·[(log πθ − log πref)(a) − (log πθ − log πref)(b)]:
 * positive when the model prefers response A. The file is only appended to; of several lines for
 * one pair and model the last counts. No engine import: the extension host reads the cache, and
 * the training process fills it (src/train/queue-margins.ts).
 */
import * as fs from 'fs';
import { appendJsonLines } from './jsonl-append';
import { DataError, expectNonEmptyString, fieldError, readJsonl } from './jsonl';
import { PreferenceRecord } from './preference-record';
import { ComparisonPair } from './queue';

export const MARGINS_FILE = 'margins.jsonl';

export interface PairMargin {
  pair_id: string;
  model: string;
  margin: number;
}

function parseMargin(json: Record<string, unknown>): PairMargin {
  const margin = json.margin;
  if (typeof margin !== 'number' || !Number.isFinite(margin))
    throw fieldError('margin', 'must be a finite number', margin);
  return {
    pair_id: expectNonEmptyString(json.pair_id, 'pair_id'),
    model: expectNonEmptyString(json.model, 'model'),
    margin,
  };
}

/** The cached margins of `model` by pair id; a missing file is an empty cache. Bad lines are reported. */
export function readMargins(file: string, model: string): { margins: Map<string, number>; errors: DataError[] } {
  if (!fs.existsSync(file)) return { margins: new Map(), errors: [] };
  const { records, errors } = readJsonl(file, parseMargin);
  const margins = new Map<string, number>();
  for (const { value } of records) if (value.model === model) margins.set(value.pair_id, value.margin);
  return { margins, errors };
}

/** Adds margins to the cache in one durable write. */
export async function appendMargins(file: string, margins: readonly PairMargin[]): Promise<void> {
  if (margins.length > 0) await appendJsonLines(file, margins);
}

/** The pairs the cache has no margin for yet, in queue order. */
export function unscoredPairs(
  pairs: readonly ComparisonPair[],
  margins: ReadonlyMap<string, number>,
): ComparisonPair[] {
  return pairs.filter((p) => !margins.has(p.pair_id));
}

/** A decided label beside the model's margin. */
export interface ScoredLabel {
  pairId: string;
  label: 'a' | 'b';
  /** r(A) − r(B). */
  margin: number;
}

/** How strongly the model agrees with the label: its margin in favour of the label's winner. */
export function agreement({ label, margin }: Pick<ScoredLabel, 'label' | 'margin'>): number {
  return label === 'a' ? margin : -margin;
}

/** The standing "a" / "b" labels of queue pairs that have a margin, in the store's order. */
export function scoredLabels(
  records: readonly PreferenceRecord[],
  margins: ReadonlyMap<string, number>,
): ScoredLabel[] {
  return records.flatMap((r) => {
    const margin = r.id === undefined ? undefined : margins.get(r.id);
    if (margin === undefined || (r.label !== 'a' && r.label !== 'b')) return [];
    return [{ pairId: r.id!, label: r.label, margin }];
  });
}

/** How large a margin counts as the model being confident: one standard deviation of normalised rewards. */
export const CONFIDENT_MARGIN = 1;

/**
 * The labels the model confidently contradicts: it prefers the other response by more than
 * `threshold`. Most confident first, so the likeliest slips come up first.
 */
export function disagreements(labels: readonly ScoredLabel[], threshold = CONFIDENT_MARGIN): ScoredLabel[] {
  if (!(threshold >= 0)) throw new Error(`the disagreement threshold must be a number of at least 0, got ${threshold}`);
  return labels.filter((l) => -agreement(l) > threshold).sort((x, y) => agreement(x) - agreement(y));
}

/**
 * Active selection: the pairs the model is least sure about first (smallest |margin|), ties in
 * queue order; pairs it has not scored yet follow in queue order.
 */
export function uncertaintyOrder<P extends Pick<ComparisonPair, 'pair_id'>>(
  pairs: readonly P[],
  margins: ReadonlyMap<string, number>,
): P[] {
  const scored = pairs.filter((p) => margins.has(p.pair_id));
  const unscored = pairs.filter((p) => !margins.has(p.pair_id));
  const certainty = (p: P) => Math.abs(margins.get(p.pair_id)!);
  // Array.prototype.sort is stable, so equal margins keep their queue order.
  return [...scored.sort((x, y) => certainty(x) - certainty(y)), ...unscored];
}

/**
 * How consistent labels are: Cohen's κ between two annotators on the pairs both judged, one
 * annotator's agreement with their own earlier labels (quality checks, shown with the sides
 * swapped), position bias (how often the response shown on the left wins) and time per label.
 */
import type { Label } from './preference-record';

/** One person's judgement of a pair, from the preference store or the check store. */
export interface Judgement {
  pairId: string;
  /** Who judged; "" when the record names no one. */
  annotator: string;
  label: Label;
  /** Which stored response was shown on the left; absent for records that do not say. */
  shownLeft?: 'a' | 'b';
  /** Seconds from the pair being shown to the choice. */
  seconds?: number;
}

/** The labels κ compares; "skip" is not a judgement of the pair and is left out. */
export const JUDGED: readonly Label[] = ['a', 'b', 'tie', 'both_bad'];

/**
 * Cohen's κ of a k×k contingency table (rows: one rater's category, columns: the other's):
 * (p_o − p_e) / (1 − p_e), with p_o the observed agreement and p_e the agreement expected from
 * the raters' marginals. NaN when it is undefined: no items, or both raters always used one and
 * the same category (p_e = 1).
 */
export function cohensKappa(table: readonly (readonly number[])[]): number {
  const k = table.length;
  if (table.some((row) => row.length !== k)) throw new Error(`cohensKappa: the table must be square (${k} rows)`);
  const n = table.flat().reduce((s, x) => s + x, 0);
  if (n === 0) return NaN;
  const observed = table.reduce((s, row, i) => s + row[i], 0) / n;
  let expected = 0;
  for (let i = 0; i < k; i++) {
    const rowTotal = table[i].reduce((s, x) => s + x, 0);
    const columnTotal = table.reduce((s, row) => s + row[i], 0);
    expected += (rowTotal / n) * (columnTotal / n);
  }
  return expected === 1 ? NaN : (observed - expected) / (1 - expected);
}

/** The contingency table of paired labels over JUDGED (pairs with a "skip" are left out). */
export function contingencyTable(pairs: readonly [Label, Label][]): number[][] {
  const table = JUDGED.map(() => JUDGED.map(() => 0));
  for (const [x, y] of pairs) {
    const [i, j] = [JUDGED.indexOf(x), JUDGED.indexOf(y)];
    if (i >= 0 && j >= 0) table[i][j]++;
  }
  return table;
}

export interface PairAgreement {
  annotators: [string, string];
  /** Pairs both judged (skips left out). */
  pairs: number;
  /** Share of those pairs with the same label. */
  agreement: number;
  kappa: number;
}

/**
 * Cohen's κ for every two annotators on the pairs both judged, taking each annotator's first
 * judgement of a pair; sorted by annotator names. Judgements without an annotator are left out.
 */
export function pairwiseAgreement(judgements: readonly Judgement[]): PairAgreement[] {
  const byAnnotator = new Map<string, Map<string, Label>>();
  for (const j of judgements) {
    if (!j.annotator || !JUDGED.includes(j.label)) continue;
    const labels = byAnnotator.get(j.annotator) ?? new Map<string, Label>();
    if (!labels.has(j.pairId)) labels.set(j.pairId, j.label);
    byAnnotator.set(j.annotator, labels);
  }
  const names = [...byAnnotator.keys()].sort();
  const result: PairAgreement[] = [];
  for (let x = 0; x < names.length; x++) {
    for (let y = x + 1; y < names.length; y++) {
      const [first, second] = [byAnnotator.get(names[x])!, byAnnotator.get(names[y])!];
      const both = [...first].flatMap(([id, label]): [Label, Label][] =>
        second.has(id) ? [[label, second.get(id)!]] : [],
      );
      if (both.length === 0) continue;
      result.push({
        annotators: [names[x], names[y]],
        pairs: both.length,
        agreement: both.filter(([l, m]) => l === m).length / both.length,
        kappa: cohensKappa(contingencyTable(both)),
      });
    }
  }
  return result;
}

export interface SelfAgreement {
  /** Checks of a pair the same annotator had labeled (skips on either side left out). */
  checks: number;
  /** Of those, the checks whose label is the label the pair has. */
  agreed: number;
}

/**
 * How often quality checks repeat the annotator's own label of the pair (both as stored labels, so
 * a check shown with the sides swapped agrees when it picks the same response).
 */
export function selfAgreement(labels: readonly Judgement[], checks: readonly Judgement[]): SelfAgreement {
  const labelOf = new Map(labels.map((l) => [`${l.annotator}\n${l.pairId}`, l.label]));
  let [total, agreed] = [0, 0];
  for (const check of checks) {
    const label = labelOf.get(`${check.annotator}\n${check.pairId}`);
    if (label === undefined || label === 'skip' || check.label === 'skip') continue;
    total++;
    if (label === check.label) agreed++;
  }
  return { checks: total, agreed };
}

export interface PositionBias {
  /** Judgements with a winner ("a" or "b") that say which side was shown on the left. */
  decided: number;
  /** Of those, the ones where the response shown on the left won. */
  left: number;
}

/** How often the response shown on the left wins; without bias about half the time. */
export function positionBias(judgements: readonly Judgement[]): PositionBias {
  const decided = judgements.filter((j) => j.shownLeft !== undefined && (j.label === 'a' || j.label === 'b'));
  return { decided: decided.length, left: decided.filter((j) => j.label === j.shownLeft).length };
}

/** The median seconds per label, over the judgements that were timed; undefined when none was. */
export function medianSeconds(judgements: readonly Judgement[]): number | undefined {
  const times = judgements.flatMap((j) => (j.seconds === undefined ? [] : [j.seconds])).sort((x, y) => x - y);
  if (times.length === 0) return undefined;
  const middle = Math.floor(times.length / 2);
  return times.length % 2 === 1 ? times[middle] : (times[middle - 1] + times[middle]) / 2;
}

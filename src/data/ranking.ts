/**
 * Ranking the candidates of a prompt at once, as Argilla's ranking question does, instead of
 * labeling its C(n, 2) pairs one by one. A ranking is stored as the pairwise labels it implies, in
 * the same preference records (preferences.ts), so training reads it unchanged: of two candidates
 * the better ranked is chosen, and two of the same rank are a tie.
 */
import type { Label } from './preference-record';
import type { ComparisonPair } from './queue';

export interface Candidate {
  id: string;
  text: string;
}

/** A prompt's pairs to rank at once: its candidates, and its pairs that have no label yet. */
export interface RankGroup {
  pairs: ComparisonPair[];
  candidates: Candidate[];
}

/** The group of the first prompt, in queue order, that has an unlabeled pair. */
export function groupToRank(
  pairs: readonly ComparisonPair[],
  unlabeled: readonly ComparisonPair[],
): RankGroup | undefined {
  const first = unlabeled[0];
  if (!first) return undefined;
  const prompt = JSON.stringify(first.prompt);
  const open = new Set(unlabeled.map((p) => p.pair_id));
  const same = pairs.filter((p) => JSON.stringify(p.prompt) === prompt);
  const group = same.filter((p) => open.has(p.pair_id));
  return { pairs: group, candidates: candidatesOf(group) };
}

/** The distinct candidates of some pairs, by candidate id, in order of appearance. */
export function candidatesOf(pairs: readonly ComparisonPair[]): Candidate[] {
  const seen = new Map<string, string>();
  for (const p of pairs) {
    if (!seen.has(p.candidate_ids.a)) seen.set(p.candidate_ids.a, p.response_a);
    if (!seen.has(p.candidate_ids.b)) seen.set(p.candidate_ids.b, p.response_b);
  }
  return [...seen].map(([id, text]) => ({ id, text }));
}

/** The label a ranking implies for a pair (rank 1 is best). */
export function impliedLabel(pair: ComparisonPair, rankOf: ReadonlyMap<string, number>): Label {
  const [a, b] = [rankOf.get(pair.candidate_ids.a), rankOf.get(pair.candidate_ids.b)];
  if (a === undefined || b === undefined) {
    const missing = a === undefined ? pair.candidate_ids.a : pair.candidate_ids.b;
    throw new Error(`pair ${pair.pair_id}: candidate ${missing} has no rank`);
  }
  return a < b ? 'a' : a > b ? 'b' : 'tie';
}

/**
 * The labels a ranking of a group's candidates implies for its pairs. Every candidate of the group
 * must have a rank, and no other candidate may be ranked.
 */
export function rankingLabels(
  group: RankGroup,
  ranks: readonly { candidate: string; rank: number }[],
): { pair: ComparisonPair; label: Label }[] {
  const rankOf = new Map(ranks.map((r) => [r.candidate, r.rank]));
  const known = new Set(group.candidates.map((c) => c.id));
  const stranger = ranks.find((r) => !known.has(r.candidate));
  if (stranger) throw new Error(`candidate ${stranger.candidate} is not one of this prompt's candidates`);
  if (rankOf.size !== ranks.length) throw new Error('a candidate is ranked twice');
  return group.pairs.map((pair) => ({ pair, label: impliedLabel(pair, rankOf) }));
}

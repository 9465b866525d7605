/**
 * Finding pairs in a labeling queue: by text (in the prompt, either response or the pair id,
 * ignoring case) and by status (unlabeled, or the label that stands).
 */
import type { Label, PreferenceRecord, TextOrMessages } from './preference-record';
import type { ComparisonPair } from './queue';

export type PairStatus = 'unlabeled' | Label;
export type StatusFilter = 'all' | PairStatus;

/** Each pair id's standing label (the latest record with a label). */
export function labelsById(records: readonly PreferenceRecord[]): Map<string, Label> {
  const labels = new Map<string, Label>();
  for (const r of records) if (r.id !== undefined && r.label !== undefined) labels.set(r.id, r.label);
  return labels;
}

export function statusOf(pair: ComparisonPair, labels: ReadonlyMap<string, Label>): PairStatus {
  return labels.get(pair.pair_id) ?? 'unlabeled';
}

/** The prompt as one text: its own, or its turns' contents joined by blank lines. */
export function promptText(prompt: TextOrMessages): string {
  return typeof prompt === 'string' ? prompt : prompt.map((m) => m.content).join('\n\n');
}

/** The pairs, in queue order, whose status matches and whose text holds `text` (ignoring case). */
export function filterPairs(
  pairs: readonly ComparisonPair[],
  labels: ReadonlyMap<string, Label>,
  filter: { text: string; status: StatusFilter },
): ComparisonPair[] {
  const needle = filter.text.trim().toLowerCase();
  return pairs.filter((pair) => {
    if (filter.status !== 'all' && statusOf(pair, labels) !== filter.status) return false;
    if (!needle) return true;
    return [pair.pair_id, promptText(pair.prompt), pair.response_a, pair.response_b].some((text) =>
      text.toLowerCase().includes(needle),
    );
  });
}

/**
 * What undo takes back, as the strings a window remembers between reloads: a label (the pair id,
 * as before checks and rankings existed), a quality check, or a ranking (all the pairs it labeled).
 */

export type Entry =
  { kind: 'label'; pairId: string } | { kind: 'check'; pairId: string } | { kind: 'rank'; pairIds: string[] };

/** Checks and rankings start with a control character, which pair ids do not hold. */
const CHECK = '\u0001check:';
const RANK = '\u0001rank:';

export function encodeEntry(entry: Entry): string {
  if (entry.kind === 'label') return entry.pairId;
  if (entry.kind === 'check') return CHECK + entry.pairId;
  return RANK + JSON.stringify(entry.pairIds);
}

export function decodeEntry(text: string): Entry {
  if (text.startsWith(CHECK)) return { kind: 'check', pairId: text.slice(CHECK.length) };
  if (text.startsWith(RANK)) return { kind: 'rank', pairIds: JSON.parse(text.slice(RANK.length)) as string[] };
  return { kind: 'label', pairId: text };
}

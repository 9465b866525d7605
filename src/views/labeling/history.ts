/**
 * What undo takes back: this window's latest labels per preferences file, newest last, remembered
 * between reloads as strings. An entry is a label (the pair id, as before checks and rankings
 * existed), a relabel (with the line of the label it replaced, which undo puts back), a quality
 * check, or a ranking (all the pairs it labeled). Undo takes back the latest entry that still
 * stands, never another window's or another person's label.
 */
import { restorePreference, standingIds, undoPreferences } from '../../data/preferences';
import type { QualityChecks } from './quality';

export type Entry =
  | { kind: 'label'; pairId: string }
  | { kind: 'relabel'; pairId: string; replacedLine: number }
  | { kind: 'check'; pairId: string }
  | { kind: 'rank'; pairIds: string[] };

/** Entries other than labels start with a control character, which pair ids do not hold. */
const CHECK = '\u0001check:';
const RANK = '\u0001rank:';
const RELABEL = '\u0001relabel:';

export function encodeEntry(entry: Entry): string {
  if (entry.kind === 'label') return entry.pairId;
  if (entry.kind === 'check') return CHECK + entry.pairId;
  if (entry.kind === 'relabel') return `${RELABEL}${entry.replacedLine}:${entry.pairId}`;
  return RANK + JSON.stringify(entry.pairIds);
}

export function decodeEntry(text: string): Entry {
  if (text.startsWith(CHECK)) return { kind: 'check', pairId: text.slice(CHECK.length) };
  if (text.startsWith(RANK)) return { kind: 'rank', pairIds: JSON.parse(text.slice(RANK.length)) as string[] };
  if (text.startsWith(RELABEL)) {
    const rest = text.slice(RELABEL.length);
    const colon = rest.indexOf(':');
    return { kind: 'relabel', pairId: rest.slice(colon + 1), replacedLine: Number(rest.slice(0, colon)) };
  }
  return { kind: 'label', pairId: text };
}

/** How many of its latest labels per preferences file a window can undo. */
const UNDO_DEPTH = 200;

/** Where the entries are kept between reloads (VS Code's workspace state, or a test's). */
export interface HistoryStore {
  get(): Record<string, string[]> | undefined;
  set(history: Record<string, string[]>): void;
}

export class UndoHistory {
  private readonly entries: Map<string, string[]>;

  constructor(
    private readonly store: HistoryStore,
    private readonly checks: QualityChecks,
  ) {
    this.entries = new Map(Object.entries(store.get() ?? {}));
  }

  add(preferencesFile: string, entry: Entry): void {
    this.remember(preferencesFile, [...this.of(preferencesFile), encodeEntry(entry)]);
  }

  /** The window's latest entry in this file, standing or not. */
  latest(preferencesFile: string): Entry | undefined {
    const last = this.of(preferencesFile).at(-1);
    return last === undefined ? undefined : decodeEntry(last);
  }

  /** What an undo takes back: the latest entry that still stands (also after a reload). */
  target(preferencesFile: string): Entry | undefined {
    const live = standingIds(preferencesFile);
    const mine = this.of(preferencesFile);
    let standing = mine.length;
    const stands = (entry: Entry) => {
      if (entry.kind === 'check') return this.checks.stands(preferencesFile, entry.pairId);
      return (entry.kind === 'rank' ? entry.pairIds : [entry.pairId]).every((id) => live.has(id));
    };
    while (standing > 0 && !stands(decodeEntry(mine[standing - 1]))) standing--;
    if (standing < mine.length) this.remember(preferencesFile, mine.slice(0, standing));
    return standing > 0 ? decodeEntry(mine[standing - 1]) : undefined;
  }

  /**
   * Takes the target back in the files: a label or ranking is undone, a relabel gives the pair its
   * earlier label again, a check is undone in the check store (and is due again).
   */
  async undo(preferencesFile: string): Promise<boolean> {
    const entry = this.target(preferencesFile);
    if (!entry) return false;
    if (entry.kind === 'check') await this.checks.undo(preferencesFile, entry.pairId);
    else {
      if (entry.kind === 'relabel') await restorePreference(preferencesFile, entry.pairId, entry.replacedLine);
      else await undoPreferences(preferencesFile, entry.kind === 'rank' ? entry.pairIds : [entry.pairId]);
      this.checks.forget(preferencesFile);
    }
    this.remember(preferencesFile, this.of(preferencesFile).slice(0, -1));
    return true;
  }

  /** Keeps the window's latest entries of a preferences file, for undo after a reload. */
  private remember(preferencesFile: string, entries: string[]): void {
    this.entries.set(preferencesFile, entries.slice(-UNDO_DEPTH));
    this.store.set(Object.fromEntries(this.entries));
  }

  private of(preferencesFile: string): string[] {
    return this.entries.get(preferencesFile) ?? [];
  }
}

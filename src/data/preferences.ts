/**
 * The preference store: JSONL, one comparison a line, in TRL's preference format, so a file
 * trains with TRL's RewardTrainer or OpenRLHF as it is. Standard form (prompt + chosen is the
 * whole text):
 *
 *   {"prompt": "What does a cat eat?", "chosen": " A cat eats fish.", "rejected": " Rocks."}
 *
 * Conversational form (the prompt is the conversation so far; chosen and rejected hold the
 * assistant's turn(s)):
 *
 *   {"prompt": [{"role": "user", "content": "What does a cat eat?"}],
 *    "chosen": [{"role": "assistant", "content": "A cat eats fish."}],
 *    "rejected": [{"role": "assistant", "content": "Rocks."}]}
 *
 * TRL's implicit prompt is read too: with no "prompt", conversational chosen and rejected are
 * whole conversations and the prompt is the turns they open with in common.
 *
 * Labeling adds optional fields, kept on every round trip:
 *
 *   id             the comparison's id (a labeling queue's pair_id); undo refers to it
 *   label          "a" | "b" | "tie" | "both_bad" | "skip"; absent on imported pairs
 *   rationale      why, in the annotator's words
 *   annotator      who labeled
 *   created_at     when, as an ISO 8601 time
 *   candidate_ids  {"a": ..., "b": ...}: the candidates shown as A and B
 *   generation     how the candidates were sampled: an object of strings, numbers, booleans, nulls
 *   shown_left     "a" | "b": the response shown on the left when it was labeled
 *   duration_seconds  seconds from the pair being shown to the label
 *
 * With label "a" or "b", chosen/rejected hold the winner and the loser. "tie", "both_bad" and
 * "skip" name no winner, so those records hold the two responses as shown, each in the form
 * chosen/rejected would have:
 *
 *   {"id": "…", "label": "tie", "prompt": "…", "response_a": "…", "response_b": "…", …}
 *
 * They are kept for the record but are not Bradley–Terry pairs (see readPreferencePairs).
 *
 * The file is only ever appended to (see jsonl-append.ts). Undo appends a tombstone,
 * {"undo": "<id>"}, which takes back the latest earlier record with that id that is not already
 * undone, so repeated undos walk back through the labels. An undo with nothing left to take back
 * is refused; one already in a file (written by hand, or by an older version) changes nothing.
 * A relabel appends the undo of the standing label and the new record together; taking it back
 * appends the new record's undo and the replaced record again, as it was.
 */
import * as fs from 'fs';
import { writeFileAtomic } from '../util/files';
import { appendJsonLines } from './jsonl-append';
import { DataError, expectNonEmptyString, readJsonl, RecordError, RecordPlace } from './jsonl';
import { DecidedPreference, parsePreferenceRecord, PreferenceRecord, TextOrMessages } from './preference-record';

export interface Preferences {
  /** In file order, undone records removed. */
  records: PreferenceRecord[];
  errors: DataError[];
}

/** Reads a preference file. Bad lines are reported with their line numbers and skipped. */
export function readPreferences(file: string): Preferences {
  const { lines, errors } = readStandingLines(file);
  return { records: lines.map((l) => l.value), errors };
}

/** The standing records of a preference file with the lines they are on. */
function readStandingLines(file: string): { lines: StandingLine<PreferenceRecord>[]; errors: DataError[] } {
  const { records, errors } = readJsonl(file, parseStoreLine);
  const lines = standingLines(
    records.map(({ line, value }) => ({ place: { file, line }, value })),
    errors,
  );
  errors.sort((x, y) => x.line! - y.line!);
  return { lines, errors };
}

/** A label for a pair that already has one that is not undone (another window got there first). */
export class AlreadyLabeledError extends Error {}

/**
 * Appends one record; resolves once it is on disk. Throws if the record is not valid, and, with
 * `once`, AlreadyLabeledError if a record with its id stands: checked under the file's lock, so of
 * two windows labeling the same pair at once exactly one succeeds.
 */
export async function appendPreference(
  file: string,
  record: PreferenceRecord,
  options: { once?: boolean } = {},
): Promise<void> {
  await appendPreferences(file, [record], options);
}

/** Appends records in one write (all or none, as appendPreference appends one). */
export async function appendPreferences(
  file: string,
  records: readonly PreferenceRecord[],
  options: { once?: boolean } = {},
): Promise<void> {
  const checked = records.map(validRecord);
  const once = () => {
    const live = standingIds(file);
    const labeled = checked.find((r) => r.id !== undefined && live.has(r.id));
    if (labeled) throw new AlreadyLabeledError(`${file}: pair ${labeled.id} is already labeled`);
  };
  await appendJsonLines(file, checked, options.once ? once : undefined);
}

/**
 * Replaces the standing label of the record's pair: the old one's undo and the new record in one
 * append, so readers never see the pair without a label. Resolves to the line of the label it
 * replaced, which restorePreference puts back (the file is only appended to, so the number stays
 * valid). NothingToUndoError if none stands.
 */
export async function relabelPreference(file: string, record: PreferenceRecord): Promise<number> {
  const checked = validRecord(record);
  const id = expectNonEmptyString(checked.id, 'id');
  let replaced: number | undefined;
  const standing = () => {
    replaced = standingRecordOf(file, id)?.place.line;
    if (replaced === undefined) throw new NothingToUndoError(`${file}: pair ${id} has no label to replace (undone?)`);
  };
  await appendJsonLines(file, [{ undo: id }, checked], standing);
  return replaced!;
}

/**
 * Takes a relabel back: the pair's standing label is undone and the label on `line` (the one the
 * relabel replaced, as relabelPreference resolved) is appended again as it was, in one append, so
 * the pair stands as before the relabel. NothingToUndoError if the pair has no standing label, or
 * `line` holds no earlier label of it that is replaced.
 */
export async function restorePreference(file: string, id: string, line: number): Promise<void> {
  const lines = fs.existsSync(file) ? readJsonl(file, parseStoreLine).records : [];
  const previous = lines.find((r) => r.line === line)?.value;
  if (!previous || 'undo' in previous || previous.id !== id)
    throw new NothingToUndoError(`${file}:${line}: holds no earlier label of pair ${id} to restore`);
  const replaced = () => {
    const standing = standingRecordOf(file, id);
    if (standing === undefined)
      throw new NothingToUndoError(`${file}: pair ${id} has no label to undo (undone already?)`);
    if (JSON.stringify(standing.value) === JSON.stringify(previous))
      throw new NothingToUndoError(`${file}:${line}: the label of pair ${id} stands already`);
  };
  await appendJsonLines(file, [{ undo: id }, previous], replaced);
}

/** The record as it will be read back; throws if it is not valid. */
export function validRecord(record: PreferenceRecord): PreferenceRecord {
  try {
    return parsePreferenceRecord(JSON.parse(JSON.stringify(record)) as Record<string, unknown>);
  } catch (err) {
    if (!(err instanceof RecordError)) throw err;
    throw new Error(`not a valid preference record: ${err.message}`);
  }
}

/** An undo of a pair with no label standing (undone already, e.g. in another window). */
export class NothingToUndoError extends Error {}

/**
 * Takes back the latest record with this id; NothingToUndoError if none stands, checked under the
 * file's lock, so of two windows undoing the same label at once exactly one succeeds.
 */
export async function undoPreference(file: string, id: string): Promise<void> {
  await undoPreferences(file, [id]);
}

/** Takes back the latest record of each id in one write; NothingToUndoError (and nothing written) if one has none. */
export async function undoPreferences(file: string, ids: readonly string[]): Promise<void> {
  const undos = ids.map((id) => ({ undo: expectNonEmptyString(id, 'undo') }));
  const standing = () => {
    const live = standingIds(file);
    const gone = ids.find((id) => !live.has(id));
    if (gone !== undefined)
      throw new NothingToUndoError(`${file}: pair ${gone} has no label to undo (undone already?)`);
  };
  await appendJsonLines(file, undos, standing);
}

/** The record with this id that stands (is in the file and not undone), with its line, if one does. */
function standingRecordOf(file: string, id: string): StandingLine<PreferenceRecord> | undefined {
  if (!fs.existsSync(file)) return undefined;
  return readStandingLines(file)
    .lines.filter((l) => l.value.id === id)
    .at(-1);
}

/** The ids of the records that stand. */
export function standingIds(file: string): Set<string> {
  if (!fs.existsSync(file)) return new Set();
  return new Set(readPreferences(file).records.flatMap((r) => (r.id === undefined ? [] : [r.id])));
}

export interface PreferencePair {
  prompt: TextOrMessages;
  chosen: TextOrMessages;
  rejected: TextOrMessages;
  /** Present on "tie" and "both_bad" records read with includeTies: chosen is response A, rejected B. */
  tie?: true;
}

export interface PairOptions {
  /** Also return "tie" and "both_bad" records, marked `tie` ("skip" never). */
  includeTies?: boolean;
}

/**
 * The training pairs in a preference file, each in its record's form: text, or messages that the
 * reward model's chat format renders. `skipped` counts the records left out for their label.
 */
export function readPreferencePairs(
  file: string,
  options: PairOptions = {},
): { pairs: PreferencePair[]; errors: DataError[]; skipped: number } {
  const { records, errors } = readPreferences(file);
  return { ...pairsOf(records, options), errors };
}

/** The training pairs among preference records; `skipped` counts those left out for their label. */
export function pairsOf(records: PreferenceRecord[], options: PairOptions = {}) {
  const pairs: PreferencePair[] = [];
  let skipped = 0;
  for (const r of records) {
    if ('chosen' in r) pairs.push({ prompt: r.prompt, chosen: r.chosen, rejected: r.rejected });
    else if (options.includeTies && r.label !== 'skip')
      pairs.push({ prompt: r.prompt, chosen: r.response_a, rejected: r.response_b, tie: true });
    else skipped++;
  }
  return { pairs, skipped };
}

export type ImportFormat = 'trl' | 'hh';

/**
 * Appends the comparisons of `src` to the store `dest` (created if missing) in one durable write.
 * "trl": TRL preference JSONL, either form (read as readPreferences reads a store, so our
 * optional fields are kept and undos applied); "hh": Anthropic HH-RLHF, whole transcripts in
 * chosen and rejected. Bad lines are reported and skipped.
 */
export async function importPreferences(
  src: string,
  dest: string,
  format: ImportFormat,
): Promise<{ imported: number; errors: DataError[] }> {
  const { records, errors } = format === 'hh' ? readHH(src) : readPreferences(src);
  if (records.length > 0) await appendJsonLines(dest, records);
  return { imported: records.length, errors };
}

/**
 * Writes the decided comparisons of `src` to `dest` as plain TRL records ({prompt, chosen,
 * rejected}, in each record's own form), replacing `dest` at once.
 */
export function exportPreferences(
  src: string,
  dest: string,
): { exported: number; skipped: number; errors: DataError[] } {
  const { records, errors } = readPreferences(src);
  const decided = records.filter((r): r is DecidedPreference => 'chosen' in r);
  const lines = decided.map(({ prompt, chosen, rejected }) => `${JSON.stringify({ prompt, chosen, rejected })}\n`);
  writeFileAtomic(dest, [Buffer.from(lines.join(''))]);
  return { exported: decided.length, skipped: records.length - decided.length, errors };
}

// ---- Reading lines

/** A line of the store: a record, or the tombstone of an undone label. */
export type StoreLine = PreferenceRecord | Undo;
export type Undo = { undo: string };

function parseStoreLine(json: Record<string, unknown>): StoreLine {
  if ('undo' in json) return parseUndo(json);
  return parsePreferenceRecord(json);
}

export function parseUndo(json: Record<string, unknown>): Undo {
  return { undo: expectNonEmptyString(json.undo, 'undo') };
}

/** Drops undone records; an undo of an id no earlier record has is reported. */
export function applyUndos<R extends { id?: string }>(
  lines: { place: RecordPlace; value: R | Undo }[],
  errors: DataError[],
): R[] {
  return standingLines(lines, errors).map((l) => l.value);
}

export interface StandingLine<R> {
  place: RecordPlace;
  value: R;
}

/** The lines whose records stand, in file order (as applyUndos, with where each record is). */
function standingLines<R extends { id?: string }>(
  lines: { place: RecordPlace; value: R | Undo }[],
  errors: DataError[],
): StandingLine<R>[] {
  const live: (StandingLine<R> | undefined)[] = [];
  const positionsById = new Map<string, number[]>();
  for (const { place, value } of lines) {
    if ('undo' in value) {
      const positions = positionsById.get(value.undo);
      if (!positions) errors.push({ ...place, message: `undo of "${value.undo}" matches no earlier record` });
      // A repeated undo of a label already undone takes back nothing.
      const position = positions?.pop();
      if (position !== undefined) live[position] = undefined;
      continue;
    }
    if (value.id !== undefined) {
      const positions = positionsById.get(value.id) ?? [];
      positions.push(live.length);
      positionsById.set(value.id, positions);
    }
    live.push({ place, value });
  }
  return live.filter((r): r is StandingLine<R> => r !== undefined);
}

// ---- Anthropic HH-RLHF

const HH_ASSISTANT = '\n\nAssistant:';

function readHH(file: string): Preferences {
  const { records, errors } = readJsonl(file, parseHHRecord);
  return { records: records.map((r) => r.value), errors };
}

/**
 * One HH-RLHF line: two whole transcripts ("\n\nHuman: …\n\nAssistant: …") that differ in the
 * final reply. The prompt is their shared opening up to and including its last "\n\nAssistant:";
 * chosen and rejected are the rest of each (TRL splits them the same way).
 */
function parseHHRecord(json: Record<string, unknown>): DecidedPreference {
  const chosen = expectNonEmptyString(json.chosen, 'chosen');
  const rejected = expectNonEmptyString(json.rejected, 'rejected');
  if (chosen === rejected) throw new RecordError('"chosen" and "rejected" are the same transcript');
  const end = chosen.slice(0, commonPrefixLength(chosen, rejected)).lastIndexOf(HH_ASSISTANT);
  if (end === -1) throw new RecordError('"chosen" and "rejected" share no opening that ends in "\\n\\nAssistant:"');
  const promptLength = end + HH_ASSISTANT.length;
  return {
    prompt: chosen.slice(0, promptLength),
    chosen: chosen.slice(promptLength),
    rejected: rejected.slice(promptLength),
  };
}

/**
 * TRL's implicit prompt of two texts (no "prompt"): HH-RLHF transcripts split as above; other
 * texts where they part, less the space before, as TRL's extract_prompt does
 * ("The sky is blue." / "The sky is green." → "The sky is", " blue.", " green.").
 */
export function implicitTextPrompt(json: Record<string, unknown>): DecidedPreference {
  const chosen = expectNonEmptyString(json.chosen, 'chosen');
  const rejected = expectNonEmptyString(json.rejected, 'rejected');
  if (chosen.includes(HH_ASSISTANT)) return parseHHRecord(json);
  let end = commonPrefixLength(chosen, rejected);
  if (end === chosen.length || end === rejected.length)
    throw new RecordError('field "prompt" is missing, and "chosen" and "rejected" do not part to leave two replies');
  if (end > 0 && chosen[end - 1] === ' ') end--;
  if (end === 0)
    throw new RecordError('field "prompt" is missing, and "chosen" and "rejected" share no opening to take it from');
  return { prompt: chosen.slice(0, end), chosen: chosen.slice(end), rejected: rejected.slice(end) };
}

function commonPrefixLength(x: string, y: string): number {
  let n = 0;
  while (n < x.length && n < y.length && x[n] === y[n]) n++;
  return n;
}

/**
 * Quality checks: a share of already-labeled pairs comes back, with the sides swapped, and the
 * annotator's second answer is stored here, apart from the preference store, so training never
 * reads it. The check store sits beside the preference file as a hidden file,
 * `.<name>.checks.jsonl` (data-folder readers skip hidden files), one check a line:
 *
 *   {"id": "<pair_id>", "label": "b", "annotator": "ana", "created_at": "…", "shown_left": "b",
 *    "duration_seconds": 4.2}
 *
 * `label` is the stored label ("a" is the queue's response_a, whichever side it was shown on), so
 * a check agrees with the pair's label when the two labels are equal. Undo appends {"undo": "<id>"}
 * as in the preference store.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Judgement } from './agreement';
import { appendJsonLines } from './jsonl-append';
import { DataError, expectNonEmptyString, fieldError, readJsonl } from './jsonl';
import { applyUndos, parseUndo, readPreferences, Undo } from './preferences';
import { Label, LABELS, parseOptionalFields, PreferenceRecord, parseSide } from './preference-record';

export interface CheckRecord {
  id: string;
  label: Label;
  annotator?: string;
  created_at: string;
  shown_left: 'a' | 'b';
  duration_seconds?: number;
}

/** The check store of a preference file. */
export function checksFileOf(preferencesFile: string): string {
  const name = path.basename(preferencesFile).replace(/\.jsonl$/, '');
  return path.join(path.dirname(preferencesFile), `.${name}.checks.jsonl`);
}

/** Standing checks in file order (undone ones removed); bad lines are reported and skipped. */
export function readChecks(file: string): { checks: CheckRecord[]; errors: DataError[] } {
  if (!fs.existsSync(file)) return { checks: [], errors: [] };
  const { records, errors } = readJsonl(file, parseCheckLine);
  const checks = applyUndos(
    records.map(({ line, value }) => ({ place: { file, line }, value })),
    errors,
  );
  return { checks, errors };
}

function parseCheckLine(json: Record<string, unknown>): CheckRecord | Undo {
  if ('undo' in json) return parseUndo(json);
  const label = json.label;
  if (typeof label !== 'string' || !(LABELS as readonly string[]).includes(label))
    throw fieldError('label', `must be one of ${LABELS.map((l) => `"${l}"`).join(', ')}`, label);
  const { id, annotator, created_at, shown_left, duration_seconds } = parseOptionalFields(json);
  return {
    id: expectNonEmptyString(id, 'id'),
    label: label as Label,
    ...(annotator !== undefined && { annotator }),
    created_at: expectNonEmptyString(created_at, 'created_at'),
    shown_left: parseSide(shown_left, 'shown_left'),
    ...(duration_seconds !== undefined && { duration_seconds }),
  };
}

/** Appends one check; resolves once it is on disk. */
export async function appendCheck(file: string, check: CheckRecord): Promise<void> {
  await appendJsonLines(file, [check]);
}

/** Takes back the latest check of this pair; throws if none stands (checked under the file's lock). */
export async function undoCheck(file: string, id: string): Promise<void> {
  await appendJsonLines(file, [{ undo: id }], () => {
    if (!readChecks(file).checks.some((c) => c.id === id)) throw new Error(`${file}: pair ${id} has no check to undo`);
  });
}

/** A preference record as a judgement; imported records (no label) are none. */
export function judgementOf(record: PreferenceRecord): Judgement[] {
  if (record.id === undefined || record.label === undefined) return [];
  return [
    {
      pairId: record.id,
      annotator: record.annotator ?? '',
      label: record.label,
      ...(record.shown_left && { shownLeft: record.shown_left }),
      ...(record.duration_seconds !== undefined && { seconds: record.duration_seconds }),
    },
  ];
}

export function checkJudgement(check: CheckRecord): Judgement {
  return {
    pairId: check.id,
    annotator: check.annotator ?? '',
    label: check.label,
    shownLeft: check.shown_left,
    ...(check.duration_seconds !== undefined && { seconds: check.duration_seconds }),
  };
}

/** The labels of a preference file and the checks of its check store, as judgements. */
export function readJudgements(preferencesFile: string): {
  labels: Judgement[];
  checks: Judgement[];
  errors: DataError[];
} {
  const preferences = fs.existsSync(preferencesFile) ? readPreferences(preferencesFile) : { records: [], errors: [] };
  const checks = readChecks(checksFileOf(preferencesFile));
  return {
    labels: preferences.records.flatMap(judgementOf),
    checks: checks.checks.map(checkJudgement),
    errors: [...preferences.errors, ...checks.errors],
  };
}

/**
 * Whether to show a check now and of which pair: with probability `rate`, one of the labeled pairs
 * (not skipped) that `annotator` has not checked yet and that is not `except` (the pair just
 * labeled), drawn uniformly; undefined otherwise.
 */
export function drawCheck(
  labels: readonly Judgement[],
  checks: readonly Judgement[],
  options: { annotator: string; rate: number; random: () => number; except?: string },
): string | undefined {
  if (options.rate <= 0 || options.random() >= options.rate) return undefined;
  const checked = new Set(checks.filter((c) => c.annotator === options.annotator).map((c) => c.pairId));
  const candidates = [
    ...new Set(labels.filter((l) => l.label !== 'skip' && l.pairId !== options.except).map((l) => l.pairId)),
  ].filter((id) => !checked.has(id));
  if (candidates.length === 0) return undefined;
  return candidates[Math.min(candidates.length - 1, Math.floor(options.random() * candidates.length))];
}

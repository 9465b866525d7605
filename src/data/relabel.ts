/**
 * Relabeling a pair in the append-only preference store (format in preferences.ts): the standing
 * label is taken back with an undo tombstone and the new record appended after it, both in one
 * durable write under the file's lock. Every other line stays as it was, and the old label is still
 * in the file for the record.
 */
import { appendJsonLines } from './jsonl-append';
import { PreferenceRecord } from './preference-record';
import { NothingToUndoError, stands, validRecord } from './preferences';

/**
 * Replaces the standing label of `record.id` with `record`; NothingToUndoError when no label of that
 * id stands (undone meanwhile, e.g. in another window).
 */
export async function relabelPreference(file: string, record: PreferenceRecord): Promise<void> {
  const id = record.id;
  if (id === undefined) throw new Error('a relabel needs the record\'s "id"');
  const checked = validRecord(record);
  const standing = () => {
    if (!stands(file, id))
      throw new NothingToUndoError(`${file}: pair ${id} has no label to replace (undone already?)`);
  };
  await appendJsonLines(file, [{ undo: id }, checked], standing);
}

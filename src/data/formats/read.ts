/**
 * The one reader of stage data. A stage names what it reads (a RecordKind: SFT examples,
 * preference pairs, prompts) and where (a data field, ./source.ts); this reads every record of the
 * file or dataset (./files.ts), renames columns by the stage's `columns` mapping, detects each
 * record's format by its fields and converts it to the stage's record type. Every record that
 * cannot be read is reported with its file and line (or row); the summary says how many records
 * were read in which format, for the run log.
 */
import { DataError, RecordError, RecordPlace } from '../jsonl';
import { dataFiles } from './source';
import { rawRecords } from './files';

/** Field renames, the stage's `columns` setting: the field a format reads → the column that holds it. */
export type ColumnMapping = Record<string, string>;

export interface ReadOptions {
  columns?: ColumnMapping;
  /** Whether the model renders chat messages with its own chat template (Alpaca data becomes messages). */
  templated?: boolean;
}

/** One way records of a kind are written. */
export interface RecordFormat<T> {
  /** How the run log names records of this format, e.g. "Alpaca instruction data". */
  name: string | ((value: T) => string);
  /** A record with any of these fields is read in this format (formats are tried in order). */
  marks: string[];
  /** What the format looks like, for the error about a record of no known format. */
  expects: string;
  /** The record as the stage takes it; throws a RecordError naming the field at fault. */
  convert(fields: Record<string, unknown>, options: ReadOptions): T;
}

/** What a stage reads: its formats, tried in order. */
export interface RecordKind<T> {
  formats: RecordFormat<T>[];
}

export interface DataRecord<T> {
  place: RecordPlace;
  value: T;
}

export interface Dataset<T> {
  records: DataRecord<T>[];
  errors: DataError[];
  /** "read 1100 records as Alpaca instruction data from data.json" */
  summary: string;
}

/**
 * Reads every record of `source`, each through `map` once converted (so a stage can keep what it
 * needs of a record, e.g. its token ids, rather than its text).
 */
export async function readDataset<T, U = T>(
  source: string,
  kind: RecordKind<T>,
  options: ReadOptions = {},
  map: (value: T, place: RecordPlace) => U = (value) => value as unknown as U,
): Promise<Dataset<U>> {
  const records: DataRecord<U>[] = [];
  const errors: DataError[] = [];
  const counts = new Map<string, number>();
  for (const file of dataFiles(source)) {
    const fileErrors = errors.length;
    for await (const batch of rawRecords(file)) {
      errors.push(...batch.errors);
      for (const { place, fields } of batch.records) {
        try {
          const { name, value } = convertRecord(kind, renameColumns(fields, options.columns), options);
          records.push({ place, value: map(value, place) });
          counts.set(name, (counts.get(name) ?? 0) + 1);
        } catch (err) {
          if (!(err instanceof RecordError)) throw err;
          errors.push({ ...place, message: err.message });
        }
      }
    }
    // In file order: bad lines and bad records together.
    const at = (e: DataError) => e.line ?? e.row ?? 0;
    errors.splice(fileErrors, Infinity, ...errors.slice(fileErrors).sort((x, y) => at(x) - at(y)));
  }
  return { records, errors, summary: summarize(source, records.length, counts, errors.length) };
}

/** The record in the first format it has a mark of. */
export function convertRecord<T>(
  kind: RecordKind<T>,
  fields: Record<string, unknown>,
  options: ReadOptions = {},
): { name: string; value: T } {
  const format = kind.formats.find((f) => f.marks.some((mark) => fields[mark] != null));
  if (!format) {
    const found = Object.keys(fields);
    throw new RecordError(
      `no known format: the record has ${found.length ? `the fields ${found.map((k) => `"${k}"`).join(', ')}` : 'no fields'}; ` +
        `expected ${kind.formats.map((f) => f.expects).join('; or ')}` +
        ' (a "columns" mapping in the stage\'s config renames fields)',
    );
  }
  const value = format.convert(fields, options);
  return { name: typeof format.name === 'string' ? format.name : format.name(value), value };
}

/** `columns` applied: each mapped column under the field name the formats read. */
export function renameColumns(fields: Record<string, unknown>, columns: ColumnMapping = {}): Record<string, unknown> {
  const mapped = Object.entries(columns);
  if (mapped.length === 0) return fields;
  const renamed = { ...fields };
  for (const [, column] of mapped) delete renamed[column];
  for (const [field, column] of mapped) {
    if (!(column in fields)) {
      const has = Object.keys(fields).map((k) => `"${k}"`);
      throw new RecordError(
        `column "${column}" (read as "${field}" by "columns") is missing; the record has ${has.join(', ') || 'no fields'}`,
      );
    }
    renamed[field] = fields[column];
  }
  return renamed;
}

function summarize(source: string, read: number, counts: Map<string, number>, bad: number): string {
  const formats = [...counts];
  const what = `${read} record${read === 1 ? '' : 's'}`;
  const badNote = bad ? `; ${bad} bad record${bad === 1 ? '' : 's'}` : '';
  if (formats.length === 1) return `read ${what} as ${formats[0][0]} from ${source}${badNote}`;
  const parts = formats.map(([name, n]) => `${n} as ${name}`);
  return `read ${what} from ${source}${parts.length ? `: ${parts.join(', ')}` : ''}${badNote}`;
}

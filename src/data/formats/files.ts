/**
 * The records of one local data file, as plain objects with their place in the file: JSON Lines,
 * a JSON array, CSV or TSV, or Parquet. What each record means is decided later (./formats.ts).
 * Records come in batches (a Parquet row group, or a whole text file), so a large Parquet file
 * never has all its rows as objects at once.
 */
import * as fs from 'fs';
import * as path from 'path';
import { isPlainObject } from '../../util/objects';
import { DataError, decodeUtf8, describe, readJsonl, RecordPlace } from '../jsonl';
import { readCsv } from './csv';
import { parquetBatches } from './parquet';

export interface RawRecord {
  place: RecordPlace;
  fields: Record<string, unknown>;
}

export interface RawBatch {
  records: RawRecord[];
  errors: DataError[];
}

/** By extension: Parquet, CSV, TSV; anything else is read as JSON Lines or a JSON array. */
export async function* rawRecords(file: string): AsyncGenerator<RawBatch> {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.parquet') yield* parquetBatches(file);
  else if (ext === '.csv' || ext === '.tsv') yield readCsv(file, readText(file), ext === '.tsv' ? '\t' : ',');
  else yield readJson(file);
}

/** JSON Lines, or (when the file starts with "[") a JSON array of objects. */
function readJson(file: string): RawBatch {
  const text = readText(file);
  if (text.trimStart().startsWith('[')) return readJsonArray(file, text);
  const { records, errors } = readJsonl(file, (fields) => fields);
  return { records: records.map(({ line, value }) => ({ place: { file, line }, fields: value })), errors };
}

function readText(file: string): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read data file: ${(err as Error).message}`);
  }
  try {
    return decodeUtf8(bytes);
  } catch {
    throw new Error(`${file}: not UTF-8 text`);
  }
}

/**
 * The elements of a JSON array, each parsed on its own and placed at the line it starts on, so an
 * error names the line of the element at fault.
 */
function readJsonArray(file: string, text: string): RawBatch {
  const batch: RawBatch = { records: [], errors: [] };
  const elements = arrayElements(text);
  if ('error' in elements) {
    batch.errors.push({ file, line: elements.line, message: elements.error });
    return batch;
  }
  for (const { start, end, line } of elements) {
    let value: unknown;
    try {
      value = JSON.parse(text.slice(start, end));
    } catch (err) {
      batch.errors.push({ file, line, message: `invalid JSON: ${(err as Error).message}` });
      continue;
    }
    if (isPlainObject(value)) batch.records.push({ place: { file, line }, fields: value });
    else batch.errors.push({ file, line, message: `array element must be a JSON object, got ${describe(value)}` });
  }
  return batch;
}

interface Span {
  start: number;
  end: number;
  line: number;
}

/** The spans of a JSON array's top-level elements, found by tracking strings and nesting. */
function arrayElements(text: string): Span[] | { error: string; line: number } {
  const spans: Span[] = [];
  const open = text.indexOf('[');
  let line = 1 + (text.slice(0, open).match(/\n/g)?.length ?? 0);
  let depth = 1;
  let inString = false;
  let span: Span | undefined;
  for (let i = open + 1; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') line++;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (depth === 1 && (c === ',' || c === ']')) {
      if (span) spans.push({ ...span, end: i });
      else if (c === ',' || spans.length > 0)
        return { error: 'an empty element in the JSON array (a comma too many?)', line };
      span = undefined;
      if (c === ',') continue;
      const rest = text.slice(i + 1).trim();
      return rest ? { error: `text after the end of the JSON array: ${describe(rest)}`, line } : spans;
    }
    if (!span && !/\s/.test(c)) span = { start: i, end: i, line };
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
  }
  return { error: 'the JSON array is not closed (was the file cut off?)', line };
}

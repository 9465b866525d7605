/**
 * JSON Lines data files: one JSON object per line. Every bad line is collected with its file and
 * line number, so a user can fix a file in one pass; the caller decides whether bad lines stop the
 * run or are reported and skipped.
 */
import * as fs from 'fs';
import { isPlainObject } from '../util/objects';

/** Where a record is: a line of a text file (JSONL, a JSON array, CSV), or a row of a Parquet file. */
export interface RecordPlace {
  file: string;
  /** 1-based; for a JSON array, the line its element starts on. */
  line?: number;
  /** 0-based, as the datasets library indexes rows. */
  row?: number;
}

/** One bad line or record. */
export interface DataError extends RecordPlace {
  message: string;
}

export interface JsonlRecord<T> {
  line: number;
  value: T;
}

export interface JsonlContents<T> {
  records: JsonlRecord<T>[];
  errors: DataError[];
}

/**
 * Thrown by a record validator for a line that is valid JSON but not a valid record. Any other
 * exception from a validator is a bug and is not caught.
 */
export class RecordError extends Error {}

/** Thrown by assertNoDataErrors; `errors` holds every problem, the message only the first few. */
export class DataFileError extends Error {
  constructor(
    readonly errors: DataError[],
    limit: number,
  ) {
    const shown = errors.slice(0, limit).map(formatDataError);
    if (errors.length > limit) shown.push(`... and ${errors.length - limit} more`);
    const what = errors.every((e) => e.line !== undefined) ? 'line' : 'record';
    super(`${errors.length} bad ${what}${errors.length === 1 ? '' : 's'} in data:\n${shown.join('\n')}`);
  }
}

export function formatDataError(e: DataError): string {
  return `${formatPlace(e)}: ${e.message}`;
}

/** "file:12" for a line, "file, row 12" for a Parquet row. */
export function formatPlace({ file, line, row }: RecordPlace): string {
  return line !== undefined ? `${file}:${line}` : row !== undefined ? `${file}, row ${row}` : file;
}

/** For callers that treat bad lines as fatal: throws a DataFileError listing up to `limit` of them. */
export function assertNoDataErrors(errors: DataError[], limit = 10): void {
  if (errors.length > 0) throw new DataFileError(errors, limit);
}

/**
 * A RecordError naming the field at fault and what it holds, e.g.
 * `field "messages[2].content" must be a non-empty string, got number 3`.
 */
export function fieldError(field: string, requirement: string, value: unknown): RecordError {
  if (value === undefined) return new RecordError(`field "${field}" is missing (it ${requirement})`);
  return new RecordError(`field "${field}" ${requirement}, got ${describe(value)}`);
}

export function expectNonEmptyString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw fieldError(field, 'must be a non-empty string', value);
  return value;
}

export function expectObject(value: unknown, field: string): Record<string, unknown> {
  if (!isPlainObject(value)) throw fieldError(field, 'must be a JSON object', value);
  return value;
}

/** A JSON value in a few words, for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (value === '') return 'an empty string';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  return `${typeof value} ${String(value)}`;
}

// fatal: bytes that are not UTF-8 are reported, not turned into U+FFFD. A leading BOM is dropped.
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 text without a leading BOM (editors on Windows write one); throws a TypeError on bytes that are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

/**
 * Reads `file` and runs `parseRecord` on the JSON object on each non-blank line. Lines may end
 * in \n or \r\n (JSON.parse takes the \r as whitespace); the last may lack a newline. A last line
 * with no newline that does not parse is reported as cut off, since a crash mid-write leaves that.
 */
export function readJsonl<T>(file: string, parseRecord: (record: Record<string, unknown>) => T): JsonlContents<T> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read data file: ${(err as Error).message}`);
  }
  const contents: JsonlContents<T> = { records: [], errors: [] };
  let line = 0;
  for (let start = 0; start < bytes.length;) {
    line++;
    const newline = bytes.indexOf(0x0a, start);
    const end = newline === -1 ? bytes.length : newline;
    const outcome = parseLine(bytes.subarray(start, end), parseRecord);
    start = end + 1;
    if (outcome === 'blank') continue;
    if ('value' in outcome) {
      contents.records.push({ line, value: outcome.value });
    } else {
      const torn = newline === -1 && outcome.unparsed;
      const message = torn ? `last line is incomplete (was the file cut off?): ${outcome.error}` : outcome.error;
      contents.errors.push({ file, line, message });
    }
  }
  return contents;
}

type LineOutcome<T> = 'blank' | { value: T } | { error: string; unparsed: boolean };

function parseLine<T>(raw: Uint8Array, parseRecord: (record: Record<string, unknown>) => T): LineOutcome<T> {
  let text: string;
  try {
    text = decodeUtf8(raw);
  } catch {
    return { error: 'not valid UTF-8 text', unparsed: true };
  }
  if (text.trim() === '') return 'blank';
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { error: `invalid JSON: ${(err as Error).message}`, unparsed: true };
  }
  if (!isPlainObject(json)) return { error: `line must be a JSON object, got ${describe(json)}`, unparsed: false };
  try {
    return { value: parseRecord(json) };
  } catch (err) {
    if (!(err instanceof RecordError)) throw err;
    return { error: err.message, unparsed: false };
  }
}

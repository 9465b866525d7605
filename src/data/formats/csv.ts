/**
 * CSV and TSV data files: a header row names the columns, each further row is a record of strings
 * (a `columns` mapping in the stage's config renames them to the fields a format reads).
 */
import { CsvError, parse } from 'csv-parse/sync';
import type { RawBatch } from './files';

export function readCsv(file: string, text: string, delimiter: string): RawBatch {
  const batch: RawBatch = { records: [], errors: [] };
  try {
    const rows = parse(text, {
      delimiter,
      columns: (header: string[]) => header.map((name) => name.trim()),
      bom: true,
      skip_empty_lines: true,
      relax_quotes: delimiter === '\t',
      info: true,
    }) as { record: Record<string, string>; info: { lines: number } }[];
    for (const { record, info } of rows) batch.records.push({ place: { file, line: info.lines }, fields: record });
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    const line = (err as CsvError & { lines?: number }).lines ?? 1;
    batch.errors.push({ file, line, message: `not valid ${delimiter === '\t' ? 'TSV' : 'CSV'}: ${err.message}` });
  }
  return batch;
}

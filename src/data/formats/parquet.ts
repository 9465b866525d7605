/**
 * Parquet data files, as the Hugging Face Hub stores datasets: read one row group at a time with
 * hyparquet (Snappy, Gzip, Zstd, Brotli and LZ4 pages through hyparquet-compressors), so only one
 * row group's rows are objects at any time. Nested columns (a list of {role, content} structs)
 * come out as arrays of objects, as in the datasets library.
 */
import * as fs from 'fs';
import { AsyncBuffer, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { RawBatch } from './files';

export async function* parquetBatches(file: string): AsyncGenerator<RawBatch> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new Error(`${file}: cannot read data file: ${(err as Error).message}`);
  }
  try {
    yield* rowGroups(file, fileBuffer(fd));
  } finally {
    fs.closeSync(fd);
  }
}

async function* rowGroups(file: string, source: AsyncBuffer): AsyncGenerator<RawBatch> {
  let metadata;
  try {
    metadata = await parquetMetadataAsync(source);
  } catch (err) {
    throw new Error(`${file}: cannot read as Parquet: ${(err as Error).message}`);
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: source, metadata, rowStart, rowEnd, compressors });
    } catch (err) {
      throw new Error(`${file}: rows ${rowStart} to ${rowEnd - 1}: cannot read as Parquet: ${(err as Error).message}`);
    }
    yield { records: rows.map((fields, i) => ({ place: { file, row: rowStart + i }, fields })), errors: [] };
    rowStart = rowEnd;
  }
}

/** The byte ranges hyparquet asks for, read from an open file. */
function fileBuffer(fd: number): AsyncBuffer {
  return {
    byteLength: fs.fstatSync(fd).size,
    slice(start: number, end?: number) {
      const length = (end ?? this.byteLength) - start;
      const bytes = new Uint8Array(length);
      fs.readSync(fd, bytes, 0, length, start);
      return bytes.buffer;
    },
  };
}

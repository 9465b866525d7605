/** The entries of a VSIX (a zip file), read from its central directory, and their contents. */
import * as fs from 'fs';
import * as zlib from 'zlib';

export interface VsixEntry {
  name: string;
  /** Uncompressed size in bytes. */
  size: number;
  compressedSize: number;
  /** 0: stored, 8: deflated. */
  method: number;
  /** Where the entry's local header starts. */
  headerOffset: number;
}

const END_OF_DIRECTORY = 0x06054b50;
const DIRECTORY_ENTRY = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;

export function vsixEntries(zip: Buffer): VsixEntry[] {
  // The end-of-directory record is the last 22 bytes plus a comment of up to 64 KiB.
  let end = zip.length - 22;
  while (end >= 0 && zip.readUInt32LE(end) !== END_OF_DIRECTORY) end--;
  if (end < 0) throw new Error('not a zip file');
  const count = zip.readUInt16LE(end + 10);
  let offset = zip.readUInt32LE(end + 16);
  const entries: VsixEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(offset) !== DIRECTORY_ENTRY) throw new Error(`damaged central directory at entry ${i}`);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    entries.push({
      name: zip.toString('utf8', offset + 46, offset + 46 + nameLength),
      method: zip.readUInt16LE(offset + 10),
      compressedSize: zip.readUInt32LE(offset + 20),
      size: zip.readUInt32LE(offset + 24),
      headerOffset: zip.readUInt32LE(offset + 42),
    });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

export function readEntry(zip: Buffer, entry: VsixEntry): Buffer {
  const at = entry.headerOffset;
  if (zip.readUInt32LE(at) !== LOCAL_HEADER) throw new Error(`${entry.name}: damaged local header`);
  const start = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
  const data = zip.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) return data;
  if (entry.method === 8) return zlib.inflateRawSync(data);
  throw new Error(`${entry.name}: unsupported compression method ${entry.method}`);
}

/** Reads a VSIX file once: its entries and a way to read each. */
export function openVsix(file: string): { entries: VsixEntry[]; read(name: string): string } {
  const zip = fs.readFileSync(file);
  const entries = vsixEntries(zip);
  return {
    entries,
    read(name) {
      const entry = entries.find((e) => e.name === name);
      if (!entry) throw new Error(`${file} has no ${name}`);
      return readEntry(zip, entry).toString('utf8');
    },
  };
}

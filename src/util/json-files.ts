/** JSON files read with errors naming the file, and written durably. */
import * as fs from 'fs';
import { writeFileAtomic } from './files';
import { isPlainObject } from './objects';

export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read (${(err as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

export function readJsonObjectFile(file: string): Record<string, unknown> {
  const value = readJsonFile(file);
  if (!isPlainObject(value)) throw new Error(`${file}: must be a JSON object`);
  return value;
}

/** Pretty-printed, replacing `file` atomically. */
export function writeJsonFile(file: string, value: unknown): void {
  writeFileAtomic(file, [Buffer.from(JSON.stringify(value, null, 2) + '\n', 'utf8')]);
}

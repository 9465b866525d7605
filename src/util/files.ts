/** Durable file writes: a crash leaves the old contents or the new, never a mix. */
import * as fs from 'fs';
import * as path from 'path';

/** Replaces `file` with `chunks` so that a crash leaves either the old or the new file, never a mix. */
export function writeFileAtomic(file: string, chunks: Uint8Array[]): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(temp, 'wx');
  try {
    try {
      for (const chunk of chunks) writeAll(fd, chunk);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
  syncDir(path.dirname(file));
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

/** Makes renames and new entries in `dir` durable. Directories cannot be opened on Windows; skip there. */
export function syncDir(dir: string): void {
  if (process.platform === 'win32') return;
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

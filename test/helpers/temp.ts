/** Temporary folders for tests, removed when the test file's process ends. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const made = new Set<string>();

// Removed on process exit, not in node:test's after(): called inside a test, after() runs when that test
// ends, while exit comes once every test of the file is done; a failed removal never fails a test.
process.on('exit', () => {
  for (const dir of made) {
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      // A process the tests started may still be writing there; what it leaves is not a test result.
    }
  }
});

/** A new folder `<prefix>-XXXXXX` under the system's temporary folder, removed when the tests end. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  made.add(dir);
  return dir;
}

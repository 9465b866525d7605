/** Generated Python scripts in tests: whether python3 is here to compile them, and their keyword arguments. */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'child_process';

export const hasPython = (() => {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** The keyword names inside `Name(` … `)` of a generated script. */
export function kwargsOf(source: string, call: string): string[] {
  const start = source.indexOf(`${call}(\n`);
  assert.ok(start >= 0, `${call}( in the script`);
  const body = source.slice(start, source.indexOf('\n)', start));
  return [...body.matchAll(/^ {4}(\w+)=/gm)].map((m) => m[1]);
}

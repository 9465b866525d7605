/**
 * Run folders whose training process this host started and still watches. Between the process's
 * exit and the moment its watcher has read its last output and written the record, the record
 * still says running: another reader must not end it as gone meanwhile (registry.ts).
 */
import * as path from 'path';

const watchedHere = new Set<string>();

/** Marks the run in `dir` as watched by this host (true) or no longer (false). */
export function watchRun(dir: string, watching: boolean): void {
  if (watching) watchedHere.add(path.resolve(dir));
  else watchedHere.delete(path.resolve(dir));
}

/** Whether this host watches the process of the run in `dir`. */
export function isWatchedHere(dir: string): boolean {
  return watchedHere.has(path.resolve(dir));
}

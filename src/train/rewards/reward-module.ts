/**
 * Reward functions from a workspace file (.ts, .js, .mjs): bundled by esbuild with its imports into
 * one CommonJS file with an inline source map, written beside the run and required, so stack traces
 * and debugger breakpoints point at the user's lines. The bundle is rebuilt when any file it was
 * built from changes (by mtime), so an edit takes effect at the next rollout.
 */
import * as fs from 'fs';
import { createRequire } from 'module';
import * as path from 'path';
import { RewardFileError, compileRewardFile, declarationLine } from '../../util/reward-file';

/** One exported function of a reward file, with where it is declared. */
export interface ExportedFunction {
  /** The export's name; a default export takes the file's name. */
  name: string;
  fn: (...args: unknown[]) => unknown;
  /** 1-based line of its declaration in the file (1 where it cannot be found). */
  line: number;
}

export interface RewardModule {
  file: string;
  functions: ExportedFunction[];
  /** The files the bundle was built from (absolute), the reward file first. */
  sources: string[];
}

interface Loaded {
  module: RewardModule;
  /** The newest mtime of its sources when it was built. */
  stamp: number;
  bundle: string;
}

/** Loads reward files and reloads each one whose sources changed since. */
export class RewardModules {
  private readonly loaded = new Map<string, Loaded>();

  /** `cacheDir`: where the bundles are written (the run folder's reward-funcs/). */
  constructor(private readonly cacheDir: string) {}

  /** The file's functions as of now: rebuilt when a source changed, else as loaded before. */
  async load(file: string): Promise<RewardModule> {
    const before = this.loaded.get(file);
    if (before && newestMtime(before.module.sources) === before.stamp) return before.module;
    const built = await bundle(file, this.cacheDir);
    if (before) delete nodeRequire(before.bundle).cache[before.bundle];
    const module = {
      file,
      functions: exportedFunctions(file, requireBundle(file, built.bundle)),
      sources: built.sources,
    };
    this.loaded.set(file, { module, stamp: newestMtime(built.sources), bundle: built.bundle });
    return module;
  }

  /** Whether loading `file` now would rebuild it. */
  changed(file: string): boolean {
    const before = this.loaded.get(file);
    return !before || newestMtime(before.module.sources) !== before.stamp;
  }
}

function newestMtime(files: string[]): number {
  return Math.max(...files.map((f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : Infinity)));
}

/** Bundles `file` into cacheDir; a compile error names the file, line and column. */
async function bundle(file: string, cacheDir: string): Promise<{ bundle: string; sources: string[] }> {
  fs.mkdirSync(cacheDir, { recursive: true });
  const stem = path.basename(file).replace(/\.[^.]+$/, '');
  const outfile = path.join(cacheDir, `${stem}-${Date.now().toString(36)}.cjs`);
  const result = await compileRewardFile(file, { outfile, format: 'cjs' });
  const sources = Object.keys(result.metafile.inputs).map((f) => path.resolve(path.dirname(file), f));
  return { bundle: outfile, sources: [file, ...sources.filter((s) => s !== file)] };
}

/** Node's own require (not a bundler's) of a file on disk: the debugger sees it with its source map. */
const nodeRequire = (file: string) => createRequire(file);

function requireBundle(file: string, bundlePath: string): Record<string, unknown> {
  process.setSourceMapsEnabled(true);
  try {
    return nodeRequire(bundlePath)(bundlePath) as Record<string, unknown>;
  } catch (e) {
    throw new RewardFileError(`${file}: loading it threw: ${errorWithFrame(e, [file])}`);
  }
}

/** The exported functions of a loaded module, in the order they are declared in the file. */
function exportedFunctions(file: string, exports: Record<string, unknown>): ExportedFunction[] {
  const text = fs.readFileSync(file, 'utf8');
  const stem = path.basename(file).replace(/\.[^.]+$/, '');
  const functions = Object.entries(exports)
    .filter(([name, value]) => typeof value === 'function' && name !== '__esModule')
    .map(([name, fn]) => ({
      name: name === 'default' ? stem : name,
      fn: fn as ExportedFunction['fn'],
      line: declarationLine(text, name),
    }))
    .sort((a, b) => a.line - b.line);
  if (!functions.length)
    throw new RewardFileError(
      `${file}: exports no function (export one per reward: ({ prompts, completions }) => number[])`,
    );
  return functions;
}

/**
 * An error's message with the first stack frame in one of `sources` (as the source map gives it),
 * as "file:line:column: message".
 */
export function errorWithFrame(e: unknown, sources: string[]): string {
  const err = e instanceof Error ? e : new Error(String(e));
  const frame = (err.stack ?? '')
    .split('\n')
    .map((l) => /\(?((?:[A-Za-z]:)?[^\s()]+):(\d+):(\d+)\)?\s*$/.exec(l.trim()))
    .find((m) => m && sources.includes(path.resolve(m[1].replace(/^file:\/\//, ''))));
  return frame
    ? `${path.resolve(frame[1].replace(/^file:\/\//, ''))}:${frame[2]}:${frame[3]}: ${err.message}`
    : err.message;
}

/**
 * A workspace file of reward functions compiled for Node with esbuild: bundled with its imports,
 * with an inline source map of the user's lines, a compile error naming the file, line and column;
 * and where a name is declared in it. Training (src/train/rewards/) and exports (src/export/) use it.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as esbuild from 'esbuild';

/** A reward file that does not compile or load, with the file, line and column of the cause where known. */
export class RewardFileError extends Error {}

/**
 * esbuild's build of a reward file with its imports, for Node, with an inline source map of the
 * user's lines; `options` say where and in which module format. A compile error is a
 * RewardFileError naming the file, line and column.
 */
export async function compileRewardFile(
  file: string,
  options: Pick<esbuild.BuildOptions, 'outfile' | 'format' | 'write'>,
): Promise<esbuild.BuildResult<{ metafile: true }>> {
  if (!fs.existsSync(file)) throw new RewardFileError(`${file}: reward function file not found`);
  try {
    return await esbuild.build({
      entryPoints: [file],
      bundle: true,
      platform: 'node',
      target: 'node18',
      sourcemap: 'inline',
      sourcesContent: true,
      metafile: true,
      logLevel: 'silent',
      absWorkingDir: path.dirname(file),
      ...options,
    });
  } catch (e) {
    const errors = (e as esbuild.BuildFailure).errors;
    if (!errors?.length) throw e;
    throw new RewardFileError(errors.map((m) => formatMessage(file, m)).join('\n'));
  }
}

function formatMessage(file: string, m: esbuild.Message): string {
  const loc = m.location;
  if (!loc) return `${file}: ${m.text}`;
  const where = `${path.resolve(path.dirname(file), loc.file)}:${loc.line}:${loc.column + 1}`;
  return `${where}: ${m.text}\n    ${loc.lineText}`;
}

/** The line where `name` is declared or exported in `text` (1 where it is not found). */
export function declarationLine(text: string, name: string): number {
  const id = name.replace(/[$]/g, '\\$');
  const pattern =
    name === 'default'
      ? /export\s+default\b/
      : new RegExp(`(function\\s*\\*?\\s*${id}\\b|(const|let|var)\\s+${id}\\b|export\\s*\\{[^}]*\\b${id}\\b)`);
  const at = text.search(pattern);
  return at < 0 ? 1 : text.slice(0, at).split('\n').length;
}

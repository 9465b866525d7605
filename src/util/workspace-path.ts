/**
 * Whether a path stays inside a workspace folder, symlinks followed. An experiment file names the
 * files it reads and writes; one that leads outside its workspace folder (`../`, an absolute path,
 * or a symlink to elsewhere) is refused before anything reads or writes it. No vscode import.
 */
import * as fs from 'fs';
import * as path from 'path';

/** Symlinks in a chain of links followed before giving up, as the kernel's ELOOP does. */
const MAX_LINKS = 40;

/**
 * Why `file` (named by `field`) may not be used, or undefined when it is inside `workspace`. The
 * file itself need not exist yet (a preferences file before the first label).
 */
export function workspacePathProblem(field: string, file: string, workspace: string): string | undefined {
  if (isInsideWorkspace(file, workspace)) return undefined;
  const real = realPath(file);
  const leadsTo =
    real === undefined ? ' (its symlinks do not resolve)' : real !== path.resolve(file) ? ` (it leads to ${real})` : '';
  return `${field}: ${file}${leadsTo} is outside the workspace folder ${workspace}; an experiment may only name files inside it`;
}

/** Whether `file`, with its symlinks followed, is `workspace` or below it. */
export function isInsideWorkspace(file: string, workspace: string): boolean {
  const folder = realPath(workspace);
  const real = realPath(file);
  return folder !== undefined && real !== undefined && isWithin(real, folder);
}

/** Whether `file` is `folder` or below it; both absolute and free of symlinks. */
function isWithin(file: string, folder: string): boolean {
  const relative = path.relative(folder, file);
  return relative === '' || (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative));
}

/**
 * `file` made absolute with every symlink resolved, as far as it exists: the parts not created yet
 * are joined on as named. A dangling symlink leads to its target (writing through it would create
 * that). Undefined for a chain of links that does not end.
 */
function realPath(file: string, links = 0): string | undefined {
  const missing: string[] = [];
  for (let existing = path.resolve(file); ; existing = path.dirname(existing)) {
    const real = tryRealpath(existing);
    if (real !== undefined) return path.join(real, ...missing);
    const target = linkTarget(existing);
    if (target !== undefined) return links < MAX_LINKS ? realPath(path.join(target, ...missing), links + 1) : undefined;
    if (path.dirname(existing) === existing) return path.join(existing, ...missing);
    missing.unshift(path.basename(existing));
  }
}

function tryRealpath(file: string): string | undefined {
  try {
    return fs.realpathSync.native(file);
  } catch {
    return undefined;
  }
}

/** Where the symlink `file` points (absolute), or undefined when `file` is not a symlink. */
function linkTarget(file: string): string | undefined {
  try {
    return path.resolve(path.dirname(file), fs.readlinkSync(file));
  } catch {
    return undefined;
  }
}

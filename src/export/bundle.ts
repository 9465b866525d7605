/**
 * What an export writes: files by relative path, and the settings it could not carry over (listed in
 * its README, never dropped silently). Written into a fresh folder so nothing of the user's is overwritten.
 */
import * as fs from 'fs';
import * as path from 'path';

/** A setting with no counterpart in the target, and why. */
export interface Unmapped {
  /** The config field, e.g. "sft.min_lr_ratio". */
  field: string;
  value: unknown;
  why: string;
}

export interface ExportBundle {
  /** Text or bytes by path relative to the export folder. */
  files: Map<string, string | Buffer>;
  unmapped: Unmapped[];
  /** The commands that launch it, in order, for the summary. */
  launch: string[];
}

/** Writes the bundle into `dir`, which must not exist yet or be empty. */
export function writeBundle(dir: string, bundle: ExportBundle): void {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0)
    throw new Error(`${dir}: the export folder exists and is not empty; choose another (--out) or remove it`);
  for (const [rel, contents] of bundle.files) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, contents);
  }
}

/** A Markdown table of the unmapped settings, or a line saying there are none. */
function unmappedTable(unmapped: Unmapped[]): string {
  if (!unmapped.length) return 'Every setting of the experiment has a counterpart here.\n';
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '| setting | value | why it is not carried over |',
    '| --- | --- | --- |',
    ...unmapped.map((u) => `| \`${u.field}\` | \`${cell(JSON.stringify(u.value))}\` | ${cell(u.why)} |`),
  ].join('\n');
}

/** A README's closing sections: what a person must do before launching (if anything), and what did not carry over. */
export function readmeEnd(problems: string[], unmapped: Unmapped[]): string {
  const before = problems.length ? ['## Before launching', '', ...problems.map((p) => `- ${p}`), ''] : [];
  return [...before, '## Settings that did not carry over', '', unmappedTable(unmapped), ''].join('\n');
}

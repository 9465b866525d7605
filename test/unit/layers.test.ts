/**
 * The layers keep to their own imports (docs/architecture.md):
 * - the training side (engine, model, train, data, runner, runs, protocol, experiment, shared, util) never
 *   imports `vscode`, so it runs headless in the training process and the CLI;
 * - nothing the extension host loads reaches the engine or onnxruntime-node, directly or through
 *   another module;
 * - the webviews import only the protocol and shared folders (and browser packages);
 * - models never import trainers, and views never import command handlers.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const root = path.join(__dirname, '..', '..');

/** The import specifiers of a source file (static imports, re-exports, require() and import()). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

/** A relative specifier resolved to its .ts file (or folder index), else undefined. */
function resolveLocal(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), spec);
  return [`${base}.ts`, path.join(base, 'index.ts'), base].find((f) => fs.existsSync(f) && fs.statSync(f).isFile());
}

function sourceFiles(dir: string): string[] {
  const full = path.join(root, dir);
  if (!fs.existsSync(full)) return [];
  return fs
    .readdirSync(full, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(full, f));
}

const rel = (file: string) => path.relative(root, file);

/** Every file `entry` reaches through local imports, with the chain that reaches it. */
function reachable(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>([[entry, [rel(entry)]]]);
  const queue = [entry];
  while (queue.length) {
    const file = queue.shift()!;
    for (const spec of importsOf(file)) {
      const target = resolveLocal(file, spec) ?? spec;
      if (seen.has(target)) continue;
      seen.set(target, [...seen.get(file)!, rel(target)]);
      if (target.endsWith('.ts')) queue.push(target);
    }
  }
  return seen;
}

const HEADLESS = [
  'engine',
  'model',
  'train',
  'data',
  'runner',
  'runs',
  'protocol',
  'experiment',
  'shared',
  'util',
  'hub',
  'export',
  'cli',
];

test('the training side never imports vscode', () => {
  const offenders = HEADLESS.flatMap((dir) => sourceFiles(`src/${dir}`))
    .filter((f) => importsOf(f).includes('vscode'))
    .map(rel);
  assert.deepEqual(offenders, []);
});

test('the extension host never loads the engine or onnxruntime-node', () => {
  const engine = path.join(root, 'src', 'engine') + path.sep;
  const chains = [...reachable(path.join(root, 'src', 'extension.ts'))]
    .filter(([file]) => file.startsWith(engine) || file === 'onnxruntime-node')
    .map(([, chain]) => chain.join(' → '));
  assert.deepEqual(chains, []);
});

test('the webviews import only the protocol and shared folders', () => {
  const allowed = ['src/protocol/', 'src/shared/', 'webview-ui/'];
  const offenders = sourceFiles('webview-ui').flatMap((file) =>
    importsOf(file)
      .map((spec) => resolveLocal(file, spec))
      .filter((target): target is string => target !== undefined)
      .filter((target) => !allowed.some((dir) => rel(target).startsWith(dir)))
      .map((target) => `${rel(file)} → ${rel(target)}`),
  );
  assert.deepEqual(offenders, []);
});

/** Imports from files under `from` of files under `to`. */
function importsInto(from: string, to: string): string[] {
  const target = path.join(root, to) + path.sep;
  return sourceFiles(from).flatMap((file) =>
    importsOf(file)
      .map((spec) => resolveLocal(file, spec))
      .filter((resolved) => resolved?.startsWith(target))
      .map((resolved) => `${rel(file)} → ${rel(resolved!)}`),
  );
}

test('models never import trainers', () => {
  assert.deepEqual(importsInto('src/model', 'src/train'), []);
});

test('views never import command handlers (both use src/services.ts)', () => {
  assert.deepEqual(importsInto('src/views', 'src/commands'), []);
});

test('the checks see imports: a file that imports vscode is found', () => {
  assert.ok(importsOf(path.join(root, 'src', 'extension.ts')).includes('vscode'));
  assert.ok(reachable(path.join(root, 'src', 'cli.ts')).has('onnxruntime-node'));
});

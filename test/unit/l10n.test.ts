/**
 * The manifest speaks the display language: every command, view, setting and walkthrough text is a
 * %key% of package.nls.json, translated in package.nls.zh-cn.json, with commands, setting names
 * and command links left as they are.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { STAGE_INFO } from '../../src/shared/stages';

const root = path.resolve(__dirname, '..', '..');
const read = (file: string) => JSON.parse(fs.readFileSync(path.join(root, file), 'utf8'));
const manifest = read('package.json');
const english: Record<string, string> = read('package.nls.json');
const chinese: Record<string, string> = read('package.nls.zh-cn.json');

/** Every string in the manifest's localizable places. */
function shown(): string[] {
  const c = manifest.contributes;
  const conf = Object.values(c.configuration.properties) as Record<string, string | string[]>[];
  return [
    manifest.description,
    manifest.capabilities.untrustedWorkspaces.description,
    ...c.commands.map((x: { title: string }) => x.title),
    ...Object.values(c.viewsContainers).flatMap((x) => (x as { title: string }[]).map((v) => v.title)),
    ...Object.values(c.views).flatMap((x) => (x as { name: string }[]).map((v) => v.name)),
    ...c.viewsWelcome.map((x: { contents: string }) => x.contents),
    c.configuration.title,
    ...conf.flatMap((p) => [p.description ?? p.markdownDescription, ...((p.enumDescriptions as string[]) ?? [])]),
    ...c.walkthroughs.flatMap((w: { title: string; description: string; steps: Record<string, string>[] }) => [
      w.title,
      w.description,
      ...w.steps.flatMap((s) => [s.title, s.description]),
    ]),
  ];
}

test('l10n: every text the manifest shows is a key of package.nls.json', () => {
  const texts = shown();
  assert.ok(texts.length > 40);
  for (const text of texts) {
    const key = /^%(.+)%$/.exec(text)?.[1];
    assert.ok(key, `"${text}" is not localized`);
    assert.ok(key in english, `${key} is missing from package.nls.json`);
  }
  assert.deepEqual(Object.keys(english).sort(), texts.map((t) => t.slice(1, -1)).sort(), 'no unused keys');
});

test('l10n: package.nls.zh-cn.json translates every key, keeping commands, settings and links', () => {
  assert.deepEqual(Object.keys(chinese).sort(), Object.keys(english).sort());
  const kept = (text: string) => [...(text.match(/\(command:[^)]+\)/g) ?? []), ...(text.match(/`[^`]+`/g) ?? [])];
  for (const [key, text] of Object.entries(english)) {
    const translated = chinese[key];
    // Names that stay: product, stage and provider names.
    if (/^(RLHF|RLHF Studio)$/.test(text)) continue;
    assert.match(translated, /[\u4e00-\u9fff]|^[A-Za-z0-9 ]+（/, `${key} is translated`);
    assert.deepEqual(kept(translated), kept(text), `${key} keeps its command links and code`);
  }
});

/** The English messages the code passes to vscode.l10n.t (host), t / tNodes (webviews) and t (CLI). */
function messagesInCode(): string[] {
  const files = (dir: string): string[] =>
    fs
      .readdirSync(path.join(root, dir), { withFileTypes: true })
      .flatMap((e) =>
        e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
      );
  const call = /(?:vscode\.l10n\.t|\bt|\btNodes)\(\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/g;
  const inCode = [...files('src'), ...files('webview-ui')].flatMap((file) =>
    [...fs.readFileSync(path.join(root, file), 'utf8').matchAll(call)].map((m) =>
      (m[1] ?? m[2]).replace(/\\(['"])/g, '$1'),
    ),
  );
  // Passed to t by value: the CLI's stage commands, and the headings of commander's help.
  const stageTexts = Object.values(STAGE_INFO).flatMap((s) => [
    s.cli.description,
    ...(s.cli.steps ? [s.cli.steps] : []),
  ]);
  return [...inCode, ...stageTexts, ...COMMANDER_TITLES];
}

const COMMANDER_TITLES = ['Usage:', 'Options:', 'Commands:', 'Arguments:', 'Global Options:'];

test('l10n: every message the extension and its webviews translate has a zh-cn translation with the same holes', () => {
  const bundle: Record<string, string> = read('l10n/bundle.l10n.zh-cn.json');
  assert.equal(manifest.l10n, './l10n');
  const messages = [...new Set(messagesInCode())];
  assert.ok(messages.length > 40, `${messages.length} messages`);
  const holes = (text: string) => (text.match(/\{\d+\}/g) ?? []).sort();
  for (const message of messages) {
    assert.ok(message in bundle, `"${message}" has no translation`);
    assert.deepEqual(holes(bundle[message]), holes(message), message);
    assert.match(bundle[message], /[\u4e00-\u9fff]/, message);
  }
  assert.deepEqual(
    Object.keys(bundle).filter((k) => !messages.includes(k)),
    [],
    'no stale translations',
  );
});

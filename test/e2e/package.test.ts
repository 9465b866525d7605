/**
 * What `npm run package` puts in the linux-x64 VSIX: the bundles, media and that platform's
 * onnxruntime binaries, and nothing else (no sources, tests, tools, local state, or the other
 * platforms' binaries).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { describe, test } from 'node:test';
import { ROOT } from './fixtures';
import { VSIX } from './workbench';
import { openVsix } from './vsix';

/** A second platform's onnxruntime binaries would add well over 10 MiB. */
const MAX_VSIX_MIB = 30;

describe('the packaged VSIX', () => {
  const vsix = openVsix(VSIX);
  const { entries } = vsix;
  const names = entries.map((e) => e.name);
  const files = names.filter((n) => n.startsWith('extension/')).map((n) => n.slice('extension/'.length));

  test('is small enough, and says how big it is', (t) => {
    const mib = fs.statSync(VSIX).size / 2 ** 20;
    const unpacked = entries.reduce((sum, e) => sum + e.size, 0) / 2 ** 20;
    t.diagnostic(`${VSIX}: ${mib.toFixed(1)} MiB, ${entries.length} files, ${unpacked.toFixed(1)} MiB unpacked`);
    assert.ok(
      mib < MAX_VSIX_MIB,
      `the VSIX is ${mib.toFixed(1)} MiB; more than ${MAX_VSIX_MIB} MiB means something extra got in`,
    );
  });

  test('targets linux-x64', () => {
    // The manifest's TargetPlatform decides where VS Code lets the VSIX install.
    const identity = /<Identity [^>]*>/.exec(vsix.read('extension.vsixmanifest'))?.[0];
    assert.match(identity ?? 'no <Identity> element', /TargetPlatform="linux-x64"/);
  });

  test('holds what the extension loads at run time', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { main: string };
    const required = [
      'package.json',
      'package.nls.json',
      'package.nls.zh-cn.json',
      manifest.main.replace(/^\.\//, ''),
      'dist/train-process.js',
      'dist/webview/labeling.js',
      'dist/webview/charts.js',
      'dist/webview/codicon.ttf',
      'media/experiment.schema.json',
      'media/demo/experiment.json',
      'media/demo/sft.jsonl',
      'media/demo/prompts.jsonl',
      'media/demo/eval.jsonl',
      'media/demo/rewards.ts',
      'node_modules/onnxruntime-node/dist/index.js',
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
      'node_modules/onnxruntime-common/dist/cjs/index.js',
      'node_modules/esbuild/lib/main.js',
      'node_modules/@esbuild/linux-x64/bin/esbuild',
    ];
    assert.deepEqual(
      required.filter((f) => !files.includes(f)),
      [],
      'missing from the VSIX',
    );
  });

  test('leaves out sources, tests, tools, local state and source maps', () => {
    const unwanted = files.filter(
      (f) =>
        /^(src|test|bench|scripts|docs|webview-ui|\.ci|\.cache|\.rlhf|test-results)\//.test(f) ||
        /\.(ts|map|vsix)$/.test(f) ||
        /(^|\/)[^/]*\.test\.[^/]+$/.test(f) ||
        /^(tsconfig.*\.json|webpack\.config\.js|eslint\.config\.mjs|\.prettier.*|\.npmrc|\.gitignore)$/.test(f) ||
        f.startsWith('dist/cli.js'),
    );
    // The demo template's reward functions are TypeScript on purpose: New Experiment copies them.
    assert.deepEqual(
      unwanted.filter((f) => f !== 'media/demo/rewards.ts'),
      [],
    );
  });

  test("holds no other platform's binaries and no other packages", () => {
    const otherBinaries = files.filter(
      (f) =>
        /^node_modules\/onnxruntime-node\/bin\//.test(f) &&
        !f.startsWith('node_modules/onnxruntime-node/bin/napi-v6/linux/x64/'),
    );
    assert.deepEqual(otherBinaries, []);
    const otherEsbuilds = files.filter(
      (f) => f.startsWith('node_modules/@esbuild/') && !f.startsWith('node_modules/@esbuild/linux-x64/'),
    );
    assert.deepEqual(otherEsbuilds, []);
    const packages = new Set(files.filter((f) => f.startsWith('node_modules/')).map((f) => f.split('/')[1]));
    assert.deepEqual([...packages].sort(), ['@esbuild', 'esbuild', 'onnxruntime-common', 'onnxruntime-node']);
  });
});

/**
 * `npm run package [-- <target>]`: a platform-specific VSIX (default linux-x64) holding only that
 * platform's onnxruntime and esbuild binaries (esbuild bundles GRPO's reward functions at run
 * time). vsce takes the ignore list from .vscodeignore plus the other
 * platforms' binary folders; it builds first through `vscode:prepublish` and needs no network.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** VS Code's target names → onnxruntime-node's bin/napi-v6/<platform>/<arch> folders. */
const TARGETS: Record<string, string> = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'darwin-arm64': 'darwin/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
};

const root = path.resolve(__dirname, '..');
const target = process.argv[2] ?? 'linux-x64';
if (!TARGETS[target]) {
  console.error(`unknown target "${target}"; one of: ${Object.keys(TARGETS).join(', ')}`);
  process.exit(2);
}

const binaries = path.join(root, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
const others = Object.values(TARGETS).filter(
  (dir) => dir !== TARGETS[target] && fs.existsSync(path.join(binaries, dir)),
);
// esbuild's binary comes in one package per platform, @esbuild/<target>; npm installs the host's only.
const esbuilds = path.join(root, 'node_modules', '@esbuild');
if (!fs.existsSync(path.join(esbuilds, target))) {
  const version = (
    JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'esbuild', 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  console.error(
    `node_modules/@esbuild/${target} is missing: esbuild's binary for ${target} must be in the VSIX. ` +
      `Install it first: npm install --no-save --force @esbuild/${target}@${version}`,
  );
  process.exit(2);
}
const otherEsbuilds = fs.readdirSync(esbuilds).filter((dir) => dir !== target);
const ignoreFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vsce-')), '.vscodeignore');
fs.writeFileSync(
  ignoreFile,
  [
    fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8'),
    ...others.map((dir) => `node_modules/onnxruntime-node/bin/napi-v6/${dir}/**`),
    ...otherEsbuilds.map((dir) => `node_modules/@esbuild/${dir}/**`),
  ].join('\n'),
);

const vsix = `rlhf-studio-${target}.vsix`;
execFileSync(
  path.join(root, 'node_modules', '.bin', 'vsce'),
  [
    'package',
    '--target',
    target,
    '--ignoreFile',
    ignoreFile,
    '--out',
    vsix,
    '--skip-license',
    '--allow-missing-repository',
  ],
  { cwd: root, stdio: 'inherit' },
);
console.log(`${vsix}: ${(fs.statSync(path.join(root, vsix)).size / 2 ** 20).toFixed(1)} MiB`);

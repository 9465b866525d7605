/**
 * What a fresh clone needs to install and benchmark with nothing set up by hand: npm reads no
 * project setting it is dropping, onnxruntime-node's download stays off, and the PyTorch reference
 * scripts find their sibling modules however they are started (bench/common.ts runs them through
 * runpy, which does not put the script's folder on sys.path).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '..', '..');

/** The environment less npm's own variables (npm test sets them), as in a new shell. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  delete env.PYTHONPATH;
  delete env.ONNXRUNTIME_NODE_INSTALL;
  return env;
}

test('npm reads no unknown project config in this repository', () => {
  const r = spawnSync('npm', ['config', 'get', 'registry'], { cwd: root, env: cleanEnv(), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /Unknown project config/);
});

test("onnxruntime-node's install script (a CUDA download) is denied", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  assert.equal(pkg.allowScripts?.['onnxruntime-node'], false);
});

test('the PyTorch reference scripts import their sibling modules when run through runpy from elsewhere', (t) => {
  if (spawnSync('python3', ['--version']).status !== 0) return t.skip('no python3');
  const wrapper = 'import runpy, sys\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name="__main__")';
  for (const name of ['bench_torch.py', 'ppo_torch.py']) {
    const script = path.join(root, 'bench', 'reference', name);
    const r = spawnSync('python3', ['-c', wrapper, script, '--help'], {
      cwd: os.tmpdir(),
      env: cleanEnv(),
      encoding: 'utf8',
    });
    const local = /No module named '(torch_threads|gpt2_torch|bench_torch)'/.exec(r.stderr);
    assert.equal(local, null, `${name}: ${r.stderr}`);
  }
});

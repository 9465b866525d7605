import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'child_process';
import * as path from 'path';

const hasNvidiaGpu = (() => {
  try {
    return execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8' }).includes('GPU');
  } catch {
    return false;
  }
})();

test(
  'bench:gpu on a machine without an NVIDIA GPU stops at once and says why',
  { skip: hasNvidiaGpu && 'this machine has an NVIDIA GPU' },
  () => {
    const root = path.join(__dirname, '..', '..');
    const t0 = Date.now();
    const r = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), [path.join(root, 'bench', 'gpu.ts')], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /bench:gpu (needs an NVIDIA GPU|runs on Linux)/);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'a message, not a stack trace');
    assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
  },
);

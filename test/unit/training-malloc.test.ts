import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { trainingMallocActive, withTrainingMalloc, withoutTrainingMalloc } from '../../src/util/training-malloc';

const SETTINGS = 'glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=70368744177664';

test('the training malloc settings join the tunables a user set, and leave them as they were', () => {
  assert.equal(withTrainingMalloc({}).GLIBC_TUNABLES, SETTINGS);
  const mine = 'glibc.malloc.tcache_count=0:glibc.malloc.arena_max=4';
  const env = withTrainingMalloc({ GLIBC_TUNABLES: mine, HOME: '/home/me' });
  assert.equal(env.HOME, '/home/me');
  assert.equal(
    env.GLIBC_TUNABLES,
    'glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=70368744177664',
  );
  assert.deepEqual(withoutTrainingMalloc(env), { HOME: '/home/me', GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' });
  assert.deepEqual(withoutTrainingMalloc(withTrainingMalloc({ HOME: '/' })), { HOME: '/' });
  // A setting the user changed after ours is theirs, so ours are not in effect.
  assert.equal(trainingMallocActive({ GLIBC_TUNABLES: `${SETTINGS}:glibc.malloc.mmap_max=8` }), false);
  assert.equal(trainingMallocActive({}), false);
});

test("a process started with the settings turns onnxruntime's CPU arena off, and only there", () => {
  const script = [
    "const { Runtime } = require('./src/engine/runtime');",
    "Runtime.create({ provider: 'cpu' }).then((rt) => console.log(JSON.stringify(rt.sessionOptions().enableCpuMemArena)));",
  ].join('\n');
  const arena = (env: NodeJS.ProcessEnv) => {
    const r = spawnSync(process.execPath, ['--import', require.resolve('tsx'), '-e', script], {
      cwd: path.resolve(__dirname, '..', '..'),
      env,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as boolean;
  };
  const glibc = Boolean(
    (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime,
  );
  assert.equal(arena(withTrainingMalloc(process.env)), !glibc);
  assert.equal(arena(withoutTrainingMalloc(process.env)), true);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'child_process';
import * as readline from 'readline';
import * as path from 'path';
import { exited } from '../helpers/processes';
import { trainingMallocActive, withTrainingMalloc, withoutTrainingMalloc } from '../../src/util/training-malloc';

const glibc = () =>
  Boolean((process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);

const SETTINGS =
  'glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=70368744177664:glibc.malloc.tcache_count=0';

test('the training malloc settings join the tunables a user set, and leave them as they were', () => {
  assert.equal(withTrainingMalloc({}).GLIBC_TUNABLES, SETTINGS);
  const mine = 'glibc.malloc.perturb=7:glibc.malloc.arena_max=4';
  const env = withTrainingMalloc({ GLIBC_TUNABLES: mine, HOME: '/home/me' });
  assert.equal(env.HOME, '/home/me');
  assert.equal(
    env.GLIBC_TUNABLES,
    'glibc.malloc.perturb=7:glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=70368744177664:glibc.malloc.tcache_count=0',
  );
  assert.deepEqual(withoutTrainingMalloc(env), { HOME: '/home/me', GLIBC_TUNABLES: 'glibc.malloc.perturb=7' });
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
  assert.equal(arena(withTrainingMalloc(process.env)), !glibc());
  assert.equal(arena(withoutTrainingMalloc(process.env)), true);
});

/** A program that restarts itself with the settings and, restarted, prints its pid and waits. */
function startRestarting() {
  const script = [
    "const m = require('./src/util/training-malloc');",
    'if (!m.restartWithTrainingMalloc()) {',
    '  console.log(JSON.stringify({ pid: process.pid, active: m.trainingMallocActive() }));',
    '  setInterval(() => {}, 1000);',
    '}',
  ].join('\n');
  const parent = spawn(process.execPath, ['--import', require.resolve('tsx'), '-e', script], {
    cwd: path.resolve(__dirname, '..', '..'),
    env: withoutTrainingMalloc(process.env),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const restarted = new Promise<{ pid: number; active: boolean }>((resolve) =>
    readline.createInterface({ input: parent.stdout! }).once('line', (l) => resolve(JSON.parse(l))),
  );
  return { parent, restarted };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

test('a program restarted with the settings gets signals passed on, and ends when its parent is killed outright', async (t) => {
  if (!glibc()) return t.skip('glibc only');
  const first = startRestarting();
  const { pid, active } = await first.restarted;
  assert.notEqual(pid, first.parent.pid);
  assert.equal(active, true);
  first.parent.kill('SIGTERM');
  assert.ok(await gone(pid), 'SIGTERM reached the restarted program');
  await exited(first.parent);
  assert.equal(first.parent.signalCode, 'SIGTERM');

  const second = startRestarting();
  const restarted = (await second.restarted).pid;
  second.parent.kill('SIGKILL');
  assert.ok(await gone(restarted), 'the restarted program ended with its parent');
});

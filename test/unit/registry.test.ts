import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readProcessIdentity } from '../../src/runs/process-identity';
import {
  PROCESS_GONE,
  RunRegistry,
  checkResumable,
  liveProcess,
  runOfCheckpoint,
  skippedCheckpoints,
} from '../../src/runs/registry';
import { watchRun } from '../../src/runs/watched';
import { exited, isRunning, startDeafToSigint, startStranger } from '../helpers/processes';
import { tempDir } from '../helpers/temp';

const fresh = () => new RunRegistry(path.join(tempDir('registry'), 'runs'));
/** A model folder as far as the registry looks: config.json and model.safetensors. */
function fakeCheckpoint(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const file of ['config.json', 'model.safetensors']) fs.writeFileSync(path.join(dir, file), '');
}
/** The id of a process that has exited (and been reaped). */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

test('registry: runs get their own folders and run.json, written whole', () => {
  const registry = fresh();
  const a = registry.create({ name: 'my run/1', stage: 'sft', configFile: '/x/a.rlhf.json' });
  const b = registry.create({ name: 'my run/1', stage: 'sft', configFile: '/x/a.rlhf.json' });
  assert.notEqual(a.id, b.id);
  assert.match(a.id, /^\d{4}-\d\d-\d\dT[\d-]+Z-my_run_1-sft(-2)?$/);
  assert.deepEqual(fs.readdirSync(registry.dir(a.id)), ['run.json']);
  Object.assign(a, liveProcess(process.pid));
  a.metrics = { loss: 1.5 };
  registry.save(a);
  assert.deepEqual(registry.get(a.id)?.metrics, { loss: 1.5 });
  fs.mkdirSync(path.join(registry.root, 'not-a-run'));
  fs.mkdirSync(path.join(registry.root, 'torn'));
  fs.writeFileSync(path.join(registry.root, 'torn', 'run.json'), '{"id": "torn", "sta');
  assert.deepEqual(
    registry
      .list()
      .map((r) => r.id)
      .sort(),
    [a.id, b.id].sort(),
  );
});

test('registry: a run whose process this host watches is left to its watcher, even once the process is gone', () => {
  const registry = fresh();
  const run = registry.create({ name: 'watched', stage: 'rm', configFile: 'c' });
  registry.save(Object.assign(run, { pid: deadPid(), step: 0 }));
  watchRun(registry.dir(run.id), true);
  try {
    // Its process has exited, but the host has not yet read its last words (the error it reported).
    assert.equal(new RunRegistry(registry.root).get(run.id)?.status, 'running');
    assert.equal(new RunRegistry(registry.root).list()[0].status, 'running');
  } finally {
    watchRun(registry.dir(run.id), false);
  }
  const ended = new RunRegistry(registry.root).get(run.id)!;
  assert.deepEqual([ended.status, ended.error], ['failed', PROCESS_GONE]);
});

test('registry: a run recorded as running whose process is gone never reads as running', () => {
  const registry = fresh();
  const live = registry.create({ name: 'live', stage: 'sft', configFile: 'c' });
  registry.save(Object.assign(live, liveProcess(process.pid)));
  const crashed = registry.create({ name: 'crashed', stage: 'sft', configFile: 'c' });
  registry.save(Object.assign(crashed, { pid: deadPid(), step: 7 }));
  fakeCheckpoint(path.join(registry.dir(crashed.id), 'checkpoint-5'));
  const closed = registry.create({ name: 'closed', stage: 'sft', configFile: 'c' });
  registry.save(Object.assign(closed, { pid: deadPid(), step: 7 }));
  fakeCheckpoint(path.join(registry.dir(closed.id), 'checkpoint-8')); // saved on the way out
  fs.mkdirSync(path.join(registry.dir(closed.id), 'checkpoint-9.partial')); // a save cut short

  const reread = new RunRegistry(registry.root);
  assert.equal(reread.get(live.id)?.status, 'running');
  const c = reread.get(crashed.id)!;
  assert.equal(c.status, 'failed');
  assert.equal(c.error, PROCESS_GONE);
  assert.equal(c.pid, undefined);
  assert.deepEqual(
    { status: reread.get(closed.id)?.status, step: reread.get(closed.id)?.step },
    { status: 'stopped', step: 8 },
  );
  assert.equal(reread.latestCheckpoint(closed)?.step, 8);
  // The correction is written back, so every reader agrees.
  assert.equal(JSON.parse(fs.readFileSync(path.join(registry.dir(crashed.id), 'run.json'), 'utf8')).status, 'failed');
});

/** Windows cannot tell processes apart cheaply, and Stop Run signals none there. */
const notOnWindows = process.platform === 'win32' && 'processes are not identified on Windows';
const quick = { timeoutMs: 2000, pollMs: 20 };

test("registry: a run whose process id is another program's never reads as running", { skip: notOnWindows }, () => {
  const registry = fresh();
  const stranger = startStranger();
  try {
    // A run.json committed, copied from another machine or written before processes were identified: a bare id.
    const bare = registry.create({ name: 'bare', stage: 'sft', configFile: 'c' });
    registry.save(Object.assign(bare, { pid: stranger.pid }));
    // A run's process id reused by another program: its start time and command line differ.
    const reused = registry.create({ name: 'reused', stage: 'sft', configFile: 'c' });
    registry.save(Object.assign(reused, { pid: stranger.pid, pidIdentity: readProcessIdentity(process.pid) }));
    const reread = new RunRegistry(registry.root);
    assert.deepEqual(
      reread
        .list()
        .map((r) => [r.name, r.status, r.error, r.pid])
        .sort(),
      [
        ['bare', 'failed', PROCESS_GONE, undefined],
        ['reused', 'failed', PROCESS_GONE, undefined],
      ],
    );
    assert.equal(isRunning(stranger), true);
  } finally {
    stranger.kill();
  }
});

const stopTest = { skip: notOnWindows, timeout: 20_000 };

test('registry: Stop Run signals no process a stale run.json names, and marks the run as ended', stopTest, async () => {
  const registry = fresh();
  const stranger = startStranger();
  try {
    const named = registry.create({ name: 'stranger', stage: 'sft', configFile: 'c' });
    registry.save(Object.assign(named, { pid: stranger.pid, pidIdentity: readProcessIdentity(process.pid), step: 4 }));
    const gone = registry.create({ name: 'gone', stage: 'sft', configFile: 'c' });
    registry.save(Object.assign(gone, { pid: deadPid(), step: 4 }));
    fakeCheckpoint(path.join(registry.dir(gone.id), 'checkpoint-4'));

    const a = await registry.stopElsewhere(named.id, quick);
    assert.deepEqual([a.result, a.record?.status, a.record?.pid], ['stale', 'failed', undefined]);
    const b = await registry.stopElsewhere(gone.id, quick);
    assert.deepEqual([b.result, b.record?.status, b.record?.step], ['stale', 'stopped', 4]);
    const forced = await registry.forceStopElsewhere(named.id, quick);
    assert.deepEqual([forced.result, forced.record?.status], ['ended', 'failed'], 'not running now: nothing to force');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(isRunning(stranger), true, 'the unrelated program was not signalled');
  } finally {
    stranger.kill();
  }
});

test('registry: a process deaf to Stop Run is waited for a bounded time, then may be killed', stopTest, async () => {
  const registry = fresh();
  const { child, ignored } = await startDeafToSigint();
  try {
    const record = registry.create({ name: 'deaf', stage: 'sft', configFile: 'c' });
    registry.save(Object.assign(record, liveProcess(child.pid)));
    const started = Date.now();
    const stop = await registry.stopElsewhere(record.id, { timeoutMs: 300, pollMs: 20 });
    assert.ok(Date.now() - started < 2000, `gave up after ${Date.now() - started} ms`);
    assert.deepEqual([stop.result, stop.record?.status], ['timeout', 'running']);
    await ignored; // it was asked
    assert.equal(isRunning(child), true);

    const forced = await registry.forceStopElsewhere(record.id, quick);
    assert.deepEqual([forced.result, forced.record?.status, forced.record?.error], ['ended', 'failed', PROCESS_GONE]);
    await exited(child);
    assert.equal(child.signalCode, 'SIGKILL');
  } finally {
    child.kill('SIGKILL');
  }
});

test('registry: delete removes a run, but not a running one', () => {
  const registry = fresh();
  const running = registry.create({ name: 'r', stage: 'sft', configFile: 'c' });
  registry.save(Object.assign(running, liveProcess(process.pid)));
  assert.throws(() => registry.delete(running.id), /still running/);
  registry.save(Object.assign(running, { status: 'stopped', pid: undefined }));
  registry.delete(running.id);
  assert.equal(fs.existsSync(registry.dir(running.id)), false);
  assert.throws(() => registry.delete('nope'), /no run "nope"/);
});

test('registry: a checkpoint leads back to the recorded run whose folder holds it, at any depth', () => {
  const registry = fresh();
  const run = registry.create({ name: 'ppo', stage: 'ppo', configFile: 'c' });
  registry.save(Object.assign(run, { status: 'stopped' }));
  for (const checkpoint of ['checkpoint-3', 'ppo/checkpoint-3', 'checkpoint-3/policy']) {
    const found = runOfCheckpoint(path.join(registry.dir(run.id), checkpoint));
    assert.equal(found?.record.id, run.id, checkpoint);
    assert.equal(found?.registry.root, registry.root);
  }
  assert.equal(runOfCheckpoint(path.join(path.dirname(registry.root), 'elsewhere', 'checkpoint-3')), undefined);

  assert.doesNotThrow(() => checkResumable(run));
  assert.throws(() => checkResumable({ ...run, status: 'finished' }), /has finished; there is nothing to resume/);
  assert.throws(() => checkResumable({ ...run, status: 'running' }), /is already running/);
});

test('registry: a checkpoint a kill left incomplete is skipped with a warning naming it; a .partial save is never taken', () => {
  const registry = fresh();
  const run = registry.create({ name: 'ppo', stage: 'ppo', configFile: 'c' });
  const at = (name: string) => path.join(registry.dir(run.id), name);
  for (const model of ['policy', 'value']) fakeCheckpoint(path.join(at('checkpoint-4'), model));
  // What older versions left when killed while saving: each model was saved apart inside checkpoint-N/.
  fs.mkdirSync(path.join(at('checkpoint-6'), 'policy.partial'), { recursive: true });
  for (const model of ['policy', 'value']) fakeCheckpoint(path.join(at('checkpoint-7.partial'), model));
  registry.save(Object.assign(run, { pid: deadPid(), step: 6 }));

  assert.equal(registry.latestCheckpoint(run)?.path, at('checkpoint-4'));
  const search = registry.checkpoints(run);
  assert.deepEqual(
    search.incomplete.map((c) => c.path),
    [at('checkpoint-6')],
  );
  assert.deepEqual(skippedCheckpoints(search), [
    `skipped ${at('checkpoint-6')}: incomplete, it has no policy/config.json and model.safetensors, and policy.partial is a cut-off save (resuming from checkpoint-4)`,
  ]);
  assert.deepEqual(
    [registry.get(run.id)?.status, registry.get(run.id)?.error],
    ['failed', PROCESS_GONE],
    'no checkpoint covers step 6',
  );

  // An SFT checkpoint is the model folder itself.
  const sft = registry.create({ name: 'sft', stage: 'sft', configFile: 'c' });
  fakeCheckpoint(path.join(registry.dir(sft.id), 'checkpoint-2'));
  fs.mkdirSync(path.join(registry.dir(sft.id), 'checkpoint-3'));
  fs.writeFileSync(path.join(registry.dir(sft.id), 'checkpoint-3', 'config.json'), '{}');
  assert.equal(registry.latestCheckpoint(sft)?.step, 2);
  assert.match(
    skippedCheckpoints(registry.checkpoints(sft))[0],
    /checkpoint-3: incomplete, it has no model\.safetensors \(resuming from checkpoint-2\)$/,
  );
});

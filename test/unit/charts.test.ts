/**
 * The charts panel's host side in plain Node: a run's history from its folder merged with the
 * training process's live events, what reaches the webview and when, and the webview's messages
 * validated before anything acts on them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as path from 'path';
import { HostMessage, PointsMessage, parseHostMessage } from '../../src/protocol/charts';
import { RunEvent } from '../../src/protocol/runner';
import { RunRecord, RunRegistry, liveProcess } from '../../src/runs/registry';
import { RunRef } from '../../src/views/workspaceRuns';
import { ChartsHost, ChartsStream } from '../../src/views/charts/chartsStream';
import { RunBuffer } from '../../src/views/charts/runBuffer';
import { tempDir } from '../helpers/temp';

const root = tempDir('charts');
const registry = new RunRegistry(root);

/** A run folder with a trainer that writes metrics.jsonl as MetricsLog does, then sends the event. */
function trainingRun(id: string, stage: RunRecord['stage'] = 'sft') {
  const dir = registry.dir(id);
  fs.mkdirSync(dir, { recursive: true });
  const record = { id, name: id, stage, status: 'running', step: 0, metrics: {} } as unknown as RunRecord;
  const ref: RunRef = { registry, record };
  const live = { dir, record };
  const pending: RunEvent[] = [];
  return {
    dir,
    ref,
    live,
    pending,
    /** Logs a step: the row is in the file at once, its event is delivered later (flush). */
    log(step: number, values: Record<string, number>) {
      fs.appendFileSync(
        path.join(dir, 'metrics.jsonl'),
        `${JSON.stringify({ stage, step, time: 1000 + step, ...values })}\n`,
      );
      pending.push({ type: 'metrics', stage, step, time: 1000 + step, values });
    },
    sample(step: number, rows: { prompt: string; response: string; score?: number; kl?: number }[]) {
      fs.appendFileSync(
        path.join(dir, 'samples.jsonl'),
        rows.map((r) => `${JSON.stringify({ step, ...r })}\n`).join(''),
      );
      pending.push({ type: 'samples', stage, step, rows });
    },
    /** Keeps what the file holds up to `step`, as MetricsLog does when a run resumes from there. */
    resumeFrom(step: number) {
      const file = path.join(dir, 'metrics.jsonl');
      fs.writeFileSync(
        file,
        fs
          .readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => l && JSON.parse(l).step <= step)
          .map((l) => `${l}\n`)
          .join(''),
      );
    },
  };
}

/** The supervisor as the stream sees it: these runs' processes are this window's. */
function fakeSupervisor(...live: { dir: string }[]) {
  return Object.assign(new EventEmitter(), { runs: () => live });
}

/** A fake workbench: records what the stream posts, and applies points as the webview's store does. */
function fakeHost(answers: { pick?: RunRef[] } = {}) {
  const posted: HostMessage[] = [];
  const warnings: string[] = [];
  const saved: { fileName: string; contents: Buffer }[] = [];
  const host: ChartsHost = {
    post: (m) => {
      assert.ok(parseHostMessage(structuredClone(m)).ok, 'every message passes the protocol, as postMessage copies it');
      posted.push(m);
    },
    pickRuns: async () => answers.pick,
    save: async (fileName, contents) => void saved.push({ fileName, contents }),
    runsChanged: () => {},
    warn: (m) => void warnings.push(m),
  };
  return { host, posted, warnings, saved };
}

/** A column as plain numbers, null where a step has no value. */
const plain = (column: Float64Array) => Array.from(column, (v) => (Number.isNaN(v) ? null : v));

/** The columns a webview ends up with after applying these messages in order. */
function replay(messages: HostMessage[], run: string): { steps: number[]; values: Record<string, (number | null)[]> } {
  const state = { steps: [] as number[], values: {} as Record<string, (number | null)[]> };
  for (const m of messages.filter((m): m is PointsMessage => m.type === 'points' && m.run === run)) {
    state.steps = [...state.steps.slice(0, m.from), ...(plain(m.steps) as number[])];
    for (const name of new Set([...Object.keys(state.values), ...Object.keys(m.values)])) {
      const old = (state.values[name] ?? []).slice(0, m.from);
      while (old.length < m.from) old.push(null);
      state.values[name] = [...old, ...(m.values[name] ? plain(m.values[name]) : Array.from(m.steps, () => null))];
    }
  }
  return state;
}

/** The file's rows merged by step: what the webview must show for a finished run. */
function fromFile(dir: string) {
  const rows = fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const steps = [...new Set(rows.map((r) => r.step as number))];
  const names = [...new Set(rows.flatMap((r) => Object.keys(r).filter((k) => !['stage', 'step', 'time'].includes(k))))];
  const values: Record<string, (number | null)[]> = {};
  for (const name of names)
    values[name] = steps.map(
      (s) =>
        rows
          .filter((r) => r.step === s && name in r)
          .map((r) => r[name])
          .at(-1) ?? null,
    );
  return { steps, values };
}

test('history from metrics.jsonl: train and eval rows of a step make one point; a torn last line is skipped', () => {
  const run = trainingRun('history');
  run.log(1, { loss: 3, learning_rate: 1e-4 });
  run.log(2, { loss: 2.5, learning_rate: 2e-4 });
  run.log(2, { eval_loss: 2.7 });
  fs.appendFileSync(path.join(run.dir, 'metrics.jsonl'), '{"stage":"sft","step":3,"lo');
  const points = RunBuffer.fromFolder(run.dir).points();
  assert.deepEqual(plain(points.steps), [1, 2]);
  assert.deepEqual(plain(points.times), [1001, 1002]);
  assert.deepEqual(Object.fromEntries(Object.entries(points.values).map(([k, v]) => [k, plain(v)])), {
    loss: [3, 2.5],
    learning_rate: [1e-4, 2e-4],
    eval_loss: [null, 2.7],
  });
});

test('a panel opened mid-run gets the history, then only what is new: no gap, no duplicate', async () => {
  const run = trainingRun('mid-run');
  const supervisor = fakeSupervisor(run.live);
  for (let s = 1; s <= 5; s++) run.log(s, { loss: 10 - s, grad_norm: s / 10 });
  run.log(5, { eval_loss: 4.5 });
  run.sample(5, [{ prompt: 'Hi', response: 'Hello' }]);
  // Steps 1-3 were delivered before the panel opened; 4, 5 and the samples are still on their way.
  run.pending.splice(0, 3).forEach((e) => supervisor.emit('event', run.live, e));

  const { host, posted } = fakeHost();
  const stream = new ChartsStream(supervisor as never, host);
  stream.add([run.ref]);
  assert.equal(posted.length, 0, 'nothing is posted before the page says it is ready');
  await stream.receive({ type: 'ready' });
  assert.deepEqual(
    posted.map((m) => m.type),
    ['runs', 'points', 'samples'],
  );

  const before = posted.length;
  run.pending.splice(0).forEach((e) => supervisor.emit('event', run.live, e));
  assert.equal(posted.length, before, 'events for steps the history holds send nothing');

  for (let s = 6; s <= 8; s++) run.log(s, { loss: 10 - s, grad_norm: s / 10 });
  run.log(8, { eval_loss: 2.1 });
  run.sample(8, [{ prompt: 'Hi', response: 'Hello there' }]);
  run.pending.splice(0).forEach((e) => supervisor.emit('event', run.live, e));

  assert.deepEqual(replay(posted, run.dir), fromFile(run.dir));
  const appended = posted.slice(before).filter((m): m is PointsMessage => m.type === 'points');
  assert.deepEqual(
    appended.map((m) => [m.from, plain(m.steps)]),
    [
      [5, [6]],
      [6, [7]],
      [7, [8]],
      [7, [8]],
    ],
    'appends, then the eval values of step 8 join its point',
  );
  assert.deepEqual(
    appended.map((m) => plain(m.times)),
    [[1006], [1007], [1008], [1008]],
    'live points keep the time they were logged at',
  );
  const samples = posted.filter((m) => m.type === 'samples');
  assert.deepEqual(samples.at(-1), {
    type: 'samples',
    run: run.dir,
    groups: [{ step: 8, rows: [{ prompt: 'Hi', response: 'Hello there' }] }],
  });
  stream.dispose();
});

test('a run that resumes from a checkpoint replaces the points after it, as metrics.jsonl does', async () => {
  const run = trainingRun('resumed');
  const supervisor = fakeSupervisor(run.live);
  const { host, posted } = fakeHost();
  const stream = new ChartsStream(supervisor as never, host);
  stream.add([run.ref]);
  await stream.receive({ type: 'ready' });
  for (let s = 1; s <= 6; s++) run.log(s, { loss: s });
  run.pending.splice(0).forEach((e) => supervisor.emit('event', run.live, e));

  run.resumeFrom(4);
  for (let s = 5; s <= 7; s++) run.log(s, { loss: 100 + s });
  run.pending.splice(0).forEach((e) => supervisor.emit('event', run.live, e));
  assert.deepEqual(replay(posted, run.dir), fromFile(run.dir));
  assert.deepEqual(replay(posted, run.dir).values.loss, [1, 2, 3, 4, 105, 106, 107]);
  stream.dispose();
});

test('a page that went away gets nothing until it is ready again, then every buffer in full', async () => {
  const a = trainingRun('reopen-a', 'ppo'),
    b = trainingRun('reopen-b', 'ppo');
  const supervisor = fakeSupervisor(a.live, b.live);
  const { host, posted } = fakeHost();
  const stream = new ChartsStream(supervisor as never, host);
  stream.add([a.ref, b.ref]);
  await stream.receive({ type: 'ready' });
  stream.detach();
  for (let s = 1; s <= 3; s++) a.log(s, { 'objective/kl': s / 100 });
  a.pending.splice(0).forEach((e) => supervisor.emit('event', a.live, e));
  assert.equal(posted.filter((m) => m.type === 'points' && m.steps.length).length, 0);

  posted.length = 0;
  await stream.receive({ type: 'ready' });
  assert.deepEqual(posted[0], {
    type: 'runs',
    // Runs go by their titles: experiment, stage and number (these records predate numbers).
    runs: [a.dir, b.dir].map((key, i) => ({ key, name: `reopen-${'ab'[i]} PPO`, stage: 'ppo', status: 'running' })),
  });
  assert.deepEqual(replay(posted, a.dir), fromFile(a.dir));

  a.live.record.status = 'finished';
  supervisor.emit('ended', a.live, { status: 'finished' });
  assert.deepEqual(posted.at(-1), {
    type: 'runs',
    runs: [
      { key: a.dir, name: 'reopen-a PPO', stage: 'ppo', status: 'finished' },
      { key: b.dir, name: 'reopen-b PPO', stage: 'ppo', status: 'running' },
    ],
  });
  stream.dispose();
  supervisor.emit('event', a.live, { type: 'metrics', stage: 'ppo', step: 9, values: { 'objective/kl': 1 } });
  assert.equal(posted.at(-1)?.type, 'runs', 'a disposed stream no longer listens');
});

/** Resolves once `done()` holds, checking at each turn of the event loop for up to 5 s. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (const start = Date.now(); !done(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() - start > 5000) assert.fail(`timed out waiting until ${what}`);
  }
}

test('a run that another process trains (another window, the CLI) is followed through its files, to its end', async () => {
  const record = registry.create({ name: 'elsewhere', stage: 'ppo', configFile: '/x/e.rlhf.json' });
  registry.save(Object.assign(record, liveProcess(process.pid)));
  const dir = registry.dir(record.id);
  const metrics = path.join(dir, 'metrics.jsonl'),
    samples = path.join(dir, 'samples.jsonl');
  const row = (step: number) =>
    `${JSON.stringify({ stage: 'ppo', step, time: 1000 + step, 'objective/kl': step / 10 })}\n`;
  fs.writeFileSync(metrics, row(1) + row(2));
  const { host, posted } = fakeHost();
  const stream = new ChartsStream(fakeSupervisor() as never, host);
  stream.add([{ registry, record }]);
  await stream.receive({ type: 'ready' });
  assert.deepEqual(replay(posted, dir).steps, [1, 2]);

  // Step 4 arrives in two writes, the samples of step 4 too: nothing is read twice or lost.
  fs.appendFileSync(metrics, row(3) + row(4).slice(0, 10));
  fs.appendFileSync(samples, `${JSON.stringify({ step: 4, prompt: 'a', response: 'b', score: 1 })}\n`);
  await until(() => replay(posted, dir).steps.length === 3, 'step 3 is posted');
  fs.appendFileSync(metrics, row(4).slice(10));
  fs.appendFileSync(samples, `${JSON.stringify({ step: 4, prompt: 'c', response: 'd', score: 2 })}\n`);
  await until(() => replay(posted, dir).steps.length === 4, 'step 4 is posted');
  assert.deepEqual(replay(posted, dir), fromFile(dir));
  await until(
    () => posted.some((m) => m.type === 'samples' && m.groups.some((g) => g.rows.length === 2)),
    'both samples of step 4 are posted',
  );
  const groups = posted.flatMap((m) => (m.type === 'samples' ? m.groups : []));
  assert.deepEqual(groups.at(-1), {
    step: 4,
    rows: [
      { prompt: 'a', response: 'b', score: 1 },
      { prompt: 'c', response: 'd', score: 2 },
    ],
  });

  registry.save(Object.assign(record, { status: 'finished', pid: undefined }));
  await until(
    () => posted.some((m) => m.type === 'runs' && m.runs[0]?.status === 'finished'),
    'the run shows as finished',
  );
  stream.dispose();
  const count = posted.length;
  fs.appendFileSync(metrics, row(5));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(posted.length, count, 'a disposed stream stops following');
});

test('messages from the webview are validated: bad ones are logged and dropped', async () => {
  const supervisor = fakeSupervisor();
  const run = trainingRun('validated');
  const other = trainingRun('other');
  const { host, posted, warnings, saved } = fakeHost({ pick: [other.ref] });
  const stream = new ChartsStream(supervisor as never, host);
  stream.add([run.ref]);

  for (const bad of [
    null,
    'ready',
    { type: 'delete', path: '/' },
    { type: 'removeRun' },
    { type: 'export', format: 'exe', fileName: 'x', data: '' },
    { type: 'export', format: 'csv', fileName: '', data: 'a' },
  ]) {
    await stream.receive(bad);
  }
  assert.equal(warnings.length, 6);
  assert.ok(
    warnings.every((w) => /^charts: ignored a message from the webview \(.+\)$/.test(w)),
    warnings.join('\n'),
  );
  assert.equal(posted.length, 0);
  assert.deepEqual(stream.keys, [run.dir]);

  await stream.receive({
    type: 'export',
    format: 'png',
    fileName: 'kl.png',
    data: 'data:text/html;base64,PHNjcmlwdD4=',
  });
  assert.match(warnings.at(-1)!, /not a PNG data URL/);
  assert.equal(saved.length, 0);

  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
  await stream.receive({
    type: 'export',
    format: 'png',
    fileName: '../../objective/kl.png',
    data: `data:image/png;base64,${png.toString('base64')}`,
  });
  await stream.receive({ type: 'export', format: 'csv', fileName: 'loss.csv', data: 'run,step\na,1\n' });
  assert.deepEqual(
    saved.map((s) => s.fileName),
    ['objective-kl.png', 'loss.csv'],
  );
  assert.deepEqual(saved[0].contents, png);
  assert.equal(saved[1].contents.toString('utf8'), 'run,step\na,1\n');

  await stream.receive({ type: 'pickRuns' });
  assert.deepEqual(stream.keys, [other.dir], 'the picked runs replace those shown');
  await stream.receive({ type: 'removeRun', run: other.dir });
  assert.deepEqual(stream.keys, []);
  stream.dispose();
});

test('points travel as Float64Array columns, checked by type and length on arrival', () => {
  const f = (...v: number[]) => Float64Array.from(v);
  const message = {
    type: 'points',
    run: '/runs/a',
    from: 0,
    steps: f(1, 2),
    times: f(1001, 1002),
    values: { loss: f(3, NaN) },
  };
  const parsed = parseHostMessage(structuredClone(message));
  assert.ok(
    parsed.ok && parsed.value.type === 'points' && Number.isNaN(parsed.value.values.loss[1]),
    'NaN is a missing value',
  );
  for (const bad of [
    { steps: [1, 2] },
    { times: f(1001) },
    { values: { loss: [3, null] } },
    { values: { loss: new Float32Array(2) } },
    { from: -1 },
  ]) {
    assert.equal(parseHostMessage({ ...message, ...bad }).ok, false, JSON.stringify(bad));
  }
});

/**
 * Metrics of runs trained elsewhere: a transformers trainer_state.json, a TensorBoard event file
 * with transformers' tags, and JSONL rows become the same rows by step, shown by the charts stream
 * beside the workspace's runs; damaged or foreign files give a message naming the file.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as path from 'path';
import { HostMessage, parseHostMessage } from '../../src/protocol/charts';
import { readImportedMetrics } from '../../src/runs/imported-metrics';
import { ChartsStream } from '../../src/views/charts/chartsStream';
import { encodeEvent } from '../../src/util/tfevents';
import { scratchFolder } from '../helpers/checkpoints';

const fixture = path.join(__dirname, '..', 'fixtures', 'trainer_state.json');
const { scratch } = scratchFolder('imported');

test("a trainer_state.json's log_history: a step's training and eval entries make one row", () => {
  const run = readImportedMetrics(fixture);
  const history = JSON.parse(fs.readFileSync(fixture, 'utf8')).log_history as Record<string, number>[];
  assert.equal(run.format, 'trainer_state.json');
  assert.equal(run.stage, 'sft');
  assert.deepEqual(
    run.rows.map((r) => r.step),
    [...new Set(history.map((h) => h.step))],
  );
  const at25 = run.rows.find((r) => r.step === 25)!;
  const logged = history.filter((h) => h.step === 25);
  assert.equal(at25.values.loss, logged[0].loss);
  assert.equal(at25.values.eval_loss, logged[1].eval_loss);
  assert.equal(at25.values.epoch, 0.5);
  assert.ok(Number.isNaN(at25.time), 'trainer_state.json has no times');
  assert.equal(run.rows.at(-1)!.values.train_runtime, 120.5);
});

test("a TensorBoard event file with transformers' tags reads back under TRL's names, a DPO run's as DPO", () => {
  const file = path.join(scratch, 'events.out.tfevents.1700000000.host.1');
  const events = [
    encodeEvent({ wallTime: 1_700_000_000, step: 0, fileVersion: 'brain.Event:2' }),
    ...[10, 20].map((step) =>
      encodeEvent({
        wallTime: 1_700_000_000 + step,
        step,
        scalars: {
          'train/loss': 0.7 - step / 100,
          'train/rewards/margins': step / 10,
          'train/rewards/accuracies': 0.5,
        },
      }),
    ),
    encodeEvent({ wallTime: 1_700_000_021, step: 20, scalars: { 'eval/loss': 0.6 } }),
  ];
  fs.writeFileSync(file, Buffer.concat(events));
  const run = readImportedMetrics(file);
  assert.equal(run.format, 'TensorBoard event file');
  assert.deepEqual(run.notes, []);
  assert.deepEqual(
    run.rows.map((r) => r.step),
    [10, 20],
  );
  assert.deepEqual(Object.keys(run.rows[1].values).sort(), [
    'eval_loss',
    'loss',
    'rewards/accuracies',
    'rewards/margins',
  ]);
  assert.ok(Math.abs(run.rows[1].values.eval_loss - 0.6) < 1e-7);
  assert.equal(run.rows[0].time, 1_700_000_010);
  const dpoCharted = run.stage === 'sft' || run.stage === ('dpo' as typeof run.stage);
  assert.ok(dpoCharted, `charted as ${run.stage}`);

  const cut = path.join(scratch, 'events.out.tfevents.cut');
  fs.writeFileSync(cut, Buffer.concat(events).subarray(0, -3));
  const partial = readImportedMetrics(cut);
  assert.deepEqual(
    partial.rows.map((r) => r.step),
    [10, 20],
  );
  assert.match(
    partial.notes[0],
    /events\.out\.tfevents\.cut: a truncated record at byte \d+; the events before it are shown/,
  );
});

test('JSONL rows with step, global_step or _step; other lines are reported with their line numbers', () => {
  const file = path.join(scratch, 'metrics.jsonl');
  fs.writeFileSync(
    file,
    [
      JSON.stringify({ step: 1, time: 5, loss: 2, 'objective/kl': 0.1 }),
      '{torn',
      JSON.stringify({ _step: 2, _timestamp: 6, loss: 1.5, 'objective/kl': null }),
      JSON.stringify({ note: 'no step' }),
    ].join('\n'),
  );
  const run = readImportedMetrics(file);
  assert.equal(run.stage, 'ppo');
  assert.deepEqual(
    run.rows.map((r) => [r.step, r.time, r.values.loss]),
    [
      [1, 5, 2],
      [2, 6, 1.5],
    ],
  );
  assert.ok(Number.isNaN(run.rows[1].values['objective/kl']));
  assert.deepEqual(run.notes, [
    'metrics.jsonl:2 is not JSON; left out',
    'metrics.jsonl:4 has no "step", "global_step" or "_step"; left out',
  ]);
});

test('a file that is none of these formats is refused with its name and what was expected', () => {
  const notJson = path.join(scratch, 'trainer_state.json');
  fs.writeFileSync(notJson, '{"log_history": [');
  assert.throws(() => readImportedMetrics(notJson), /trainer_state\.json: not valid JSON/);
  const other = path.join(scratch, 'config.json');
  fs.writeFileSync(other, '{"model_type": "llama"}');
  assert.throws(
    () => readImportedMetrics(other),
    /config\.json: expected a trainer_state\.json with a "log_history" list/,
  );
  const empty = path.join(scratch, 'empty.jsonl');
  fs.writeFileSync(empty, '\n');
  assert.throws(() => readImportedMetrics(empty), /empty\.jsonl: no logged metrics found/);
});

test('the charts stream shows an imported run beside the workspace runs, and keeps it when runs are picked', async () => {
  const posted: HostMessage[] = [];
  const supervisor = Object.assign(new EventEmitter(), { runs: () => [] });
  const stream = new ChartsStream(supervisor as never, {
    post: (m) => {
      assert.ok(parseHostMessage(structuredClone(m)).ok);
      posted.push(m);
    },
    pickRuns: async () => [],
    save: async () => {},
    runsChanged: () => {},
    warn: () => {},
  });
  await stream.receive({ type: 'ready' });
  stream.addImported(readImportedMetrics(fixture));
  const runs = posted.filter((m) => m.type === 'runs').at(-1)!;
  assert.deepEqual(runs.type === 'runs' && runs.runs, [
    { key: fixture, name: 'fixtures/trainer_state.json', stage: 'sft', status: 'finished' },
  ]);
  const points = posted.find((m) => m.type === 'points');
  assert.ok(points && points.type === 'points');
  assert.equal(points.steps.length, 20);
  assert.equal(points.values.eval_loss.filter((v) => !Number.isNaN(v)).length, 4);
  stream.set([]);
  assert.deepEqual(stream.keys, [fixture]);
  stream.dispose();
});

/**
 * The labeling view's host side with a scoring model: margins are sent only for labeled pairs, as
 * shown (left − right); confident disagreements are listed and can be re-checked and relabeled;
 * the uncertainty order; background scoring started once per new pair, never in Restricted Mode.
 * The scoring itself is faked here (its engine side is in labeling-margins.test.ts): it writes
 * known margins into the cache, as the training process would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { QueueState, ToWebview } from '../../src/protocol/labeling';
import { appendMargins } from '../../src/data/margins';
import { readPreferences } from '../../src/data/preferences';
import { LabelingSession } from '../../src/views/labeling/session';
import { ScoringModel, scoringModel } from '../../src/views/labeling/scoring-model';
import { RunRecord, RunRegistry, runTitle } from '../../src/runs/registry';
import { LabelOrder } from '../../src/views/labeling/model-view';
import { workspace as labelingWorkspace } from '../helpers/labeling-session';
import { tempDir } from '../helpers/temp';

/** r(A) − r(B) of each pair as the fake model scores them. */
const MARGINS: Record<string, number> = { p0: -3, p1: 0.1, p2: 2.5, p3: -0.4 };

function workspace() {
  const { dir, experiment, preferences } = labelingWorkspace(Object.keys(MARGINS).length, (i) =>
    i === 1 ? { source: 'pets DPO #2' } : {},
  );
  const model: ScoringModel = {
    name: 'pets Reward Model #1',
    stage: 'rm',
    configFile: experiment,
    model: path.join(dir, 'rm', 'model'),
    cache: path.join(dir, 'rm', 'margins.jsonl'),
    accuracy: 0.75,
  };
  return { dir, experiment, preferences, model };
}

interface Options {
  /** Responses B on the left for these pairs. */
  swapped?: string[];
  order?: LabelOrder;
  trusted?: boolean;
}

function open(ws: ReturnType<typeof workspace>, options: Options = {}) {
  const posted: ToWebview[] = [];
  const scorings: string[] = [];
  let scored: Promise<void> = Promise.resolve();
  let history: Record<string, string[]> | undefined;
  let drawn = 0;
  const ids = Object.keys(MARGINS);
  const session = new LabelingSession({
    post: (m) => posted.push(m),
    warn: () => {},
    runCommand: () => {},
    findExperiments: async () => [{ file: ws.experiment, workspaceFolder: ws.dir }],
    isTrusted: () => options.trusted ?? true,
    selection: { get: () => undefined, set: () => {} },
    history: { get: () => history, set: (h) => (history = structuredClone(h)) },
    // Pairs are shown in queue order, so the draws go to p0, p1… in turn.
    random: () => ((options.swapped ?? []).includes(ids[drawn++]) ? 0.1 : 0.9),
    scoringModel: (file) => (file === ws.experiment ? ws.model : undefined),
    scoreQueue: (model, queueFile) => {
      scorings.push(queueFile);
      scored = appendMargins(
        model.cache,
        Object.entries(MARGINS).map(([pair_id, margin]) => ({ pair_id, model: model.model, margin })),
      );
      return scored;
    },
    order: () => options.order ?? 'queue',
  });
  const state = () => {
    const last = posted.filter((m) => m.type === 'state').at(-1);
    assert.ok(last && last.type === 'state' && last.state.kind === 'queue');
    return last.state as QueueState;
  };
  /** Waits for the background scoring and the refresh after it. */
  const settled = async () => {
    await scored;
    await new Promise((resolve) => setImmediate(resolve));
    await session.refresh();
  };
  return { session, state, scorings, settled };
}

test('a margin is sent only once its pair is labeled, oriented as the pair is shown', async () => {
  const ws = workspace();
  fs.mkdirSync(path.dirname(ws.model.cache));
  const { session, state, scorings, settled } = open(ws, { swapped: ['p0'] });
  await session.handle({ type: 'ready' });
  await settled();
  assert.equal(scorings.length, 1);
  const before = state();
  assert.equal(before.pair?.pairId, 'p0');
  assert.equal(before.model?.name, 'pets Reward Model #1');
  assert.equal(before.model?.accuracy, 0.75);
  assert.equal(before.model?.latest, undefined);
  assert.deepEqual(before.model?.disagreements, []);
  assert.ok(!JSON.stringify(before).includes('"margin"'), 'no margin before the label');

  // p0 is shown swapped (B on the left); the model prefers B (r(A) − r(B) = −3): left by 3.
  await session.handle({ type: 'label', id: 1, pairId: 'p0', choice: 'left' });
  const after = state();
  assert.deepEqual(after.model?.latest, { pairId: 'p0', prompt: 'Question 0?', choice: 'left', margin: 3 });
  assert.equal(after.pair?.pairId, 'p1');
  assert.equal(after.pair?.source, 'pets DPO #2');
  assert.ok(!JSON.stringify(after.model).includes('"p1"'), 'nothing about the shown pair');
  assert.equal(scorings.length, 1, 'scored pairs are not scored again');
});

test('a confident disagreement is listed, re-checked and relabeled; the other labels stay', async () => {
  const ws = workspace();
  fs.mkdirSync(path.dirname(ws.model.cache));
  const { session, state, settled } = open(ws);
  await session.handle({ type: 'ready' });
  await settled();
  await session.handle({ type: 'label', id: 1, pairId: 'p0', choice: 'left' }); // A; the model: B by 3
  await session.handle({ type: 'label', id: 2, pairId: 'p1', choice: 'right' }); // B; the model: A by 0.1
  await session.handle({ type: 'label', id: 3, pairId: 'p2', choice: 'left' }); // A; the model agrees
  assert.deepEqual(state().model?.disagreements, [{ pairId: 'p0', prompt: 'Question 0?', choice: 'left', margin: -3 }]);
  assert.equal(state().model?.disagreementCount, 1);

  await session.handle({ type: 'openPair', pairId: 'p0' });
  assert.equal(state().pair?.pairId, 'p0');
  assert.deepEqual(state().review, { pairId: 'p0', choice: 'left', margin: -3 });
  await session.handle({ type: 'label', id: 4, pairId: 'p0', choice: 'right' });
  assert.equal(state().review, undefined);
  assert.equal(state().pair?.pairId, 'p3', 'back to the queue');
  assert.deepEqual(state().model?.disagreements, []);
  const labels = readPreferences(ws.preferences).records.map((r) => [r.id, r.label]);
  assert.deepEqual(labels, [
    ['p1', 'b'],
    ['p2', 'a'],
    ['p0', 'b'],
  ]);

  // A pair without a label cannot be put under review: the queue goes on.
  await session.handle({ type: 'openPair', pairId: 'p3' });
  assert.equal(state().review, undefined);
  await session.handle({ type: 'openPair' });
  assert.equal(state().pair?.pairId, 'p3');
});

test('undoing a relabel puts the earlier label back, as it was; the next undo takes that label back', async () => {
  const ws = workspace();
  fs.mkdirSync(path.dirname(ws.model.cache));
  const { session, state, settled } = open(ws);
  await session.handle({ type: 'ready' });
  await settled();
  await session.handle({ type: 'label', id: 1, pairId: 'p0', choice: 'left', rationale: 'first look' });
  await session.handle({ type: 'label', id: 2, pairId: 'p1', choice: 'left' });
  const first = readPreferences(ws.preferences).records.find((r) => r.id === 'p0');
  await session.handle({ type: 'openPair', pairId: 'p0' });
  await session.handle({ type: 'label', id: 3, pairId: 'p0', choice: 'right' });
  await session.handle({ type: 'openPair', pairId: 'p0' });
  await session.handle({ type: 'label', id: 4, pairId: 'p0', choice: 'tie' });
  const labels = () => readPreferences(ws.preferences).records.map((r) => [r.id, r.label]);
  assert.deepEqual(labels(), [
    ['p1', 'a'],
    ['p0', 'tie'],
  ]);

  await session.handle({ type: 'undo', id: 5 });
  assert.deepEqual(labels(), [
    ['p1', 'a'],
    ['p0', 'b'],
  ]);
  assert.deepEqual(state().model?.latest, { pairId: 'p0', prompt: 'Question 0?', choice: 'right', margin: -3 });
  await session.handle({ type: 'undo', id: 6 });
  assert.deepEqual(labels(), [
    ['p1', 'a'],
    ['p0', 'a'],
  ]);
  assert.deepEqual(
    readPreferences(ws.preferences).records.find((r) => r.id === 'p0'),
    first,
    'the first label, rationale and time included',
  );
  assert.deepEqual([state().done, state().pair?.pairId, state().canUndo], [2, 'p2', true]);
  // Then the labels themselves, newest first.
  await session.handle({ type: 'undo', id: 7 });
  assert.deepEqual(labels(), [['p0', 'a']]);
  await session.handle({ type: 'undo', id: 8 });
  assert.deepEqual(labels(), []);
  assert.equal(state().canUndo, false);
});

test('the uncertainty order shows the smallest |margin| first; the default keeps the queue order', async () => {
  const ws = workspace();
  fs.mkdirSync(path.dirname(ws.model.cache));
  const uncertain = open(ws, { order: 'uncertainty' });
  await uncertain.session.handle({ type: 'ready' });
  await uncertain.settled();
  assert.equal(uncertain.state().pair?.pairId, 'p1');
  await uncertain.session.handle({ type: 'label', id: 1, pairId: 'p1', choice: 'left' });
  assert.equal(uncertain.state().pair?.pairId, 'p3');
  const plain = open(ws);
  await plain.session.handle({ type: 'ready' });
  await plain.settled();
  assert.equal(plain.state().pair?.pairId, 'p0');
});

test('in Restricted Mode nothing is scored and no model view is sent', async () => {
  const ws = workspace();
  const { session, state, scorings } = open(ws, { trusted: false });
  await session.handle({ type: 'ready' });
  assert.equal(state().model, undefined);
  assert.deepEqual(scorings, []);
});

test("the scoring model is the experiment's newest finished reward-model or DPO run with a model, with its held-out accuracy", async () => {
  const dir = tempDir('labeling-scoring');
  const registry = new RunRegistry(path.join(dir, 'runs'));
  const config = path.join(dir, 'pets.rlhf.json');
  const run = (
    stage: 'rm' | 'dpo' | 'sft',
    status: RunRecord['status'],
    metrics: RunRecord['metrics'],
    model = true,
  ) => {
    const record = registry.create({ name: 'pets', stage, configFile: config });
    Object.assign(record, { status, metrics, models: { sft: '/sft/model' } });
    registry.save(record);
    if (model) {
      fs.mkdirSync(path.join(registry.dir(record.id), 'model'));
      fs.writeFileSync(path.join(registry.dir(record.id), 'model', 'config.json'), '{}');
    }
    return record;
  };
  assert.equal(scoringModel(registry, config), undefined);
  const rm = run('rm', 'finished', { eval_accuracy: 0.8 });
  assert.deepEqual(scoringModel(registry, config), {
    name: runTitle(rm),
    stage: 'rm',
    model: path.join(registry.dir(rm.id), 'model'),
    cache: path.join(registry.dir(rm.id), 'margins.jsonl'),
    configFile: config,
    models: { sft: '/sft/model' },
    accuracy: 0.8,
  });
  await new Promise((resolve) => setTimeout(resolve, 5));
  run('rm', 'stopped', { eval_accuracy: 0.9 });
  run('sft', 'finished', {});
  run('rm', 'finished', {}, false);
  assert.equal(
    scoringModel(registry, config)?.model,
    path.join(registry.dir(rm.id), 'model'),
    'only finished runs with a model',
  );
  await new Promise((resolve) => setTimeout(resolve, 5));
  const dpo = run('dpo', 'finished', { 'eval_rewards/accuracies': 0.625, eval_accuracy: 0.1 });
  assert.deepEqual(
    [
      scoringModel(registry, config)?.stage,
      scoringModel(registry, config)?.name,
      scoringModel(registry, config)?.accuracy,
    ],
    ['dpo', runTitle(dpo), 0.625],
  );
  assert.equal(scoringModel(registry, path.join(dir, 'other.rlhf.json')), undefined);
});

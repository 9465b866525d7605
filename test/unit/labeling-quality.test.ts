/**
 * Quality checks in the labeling session with real files: a labeled pair comes back with the sides
 * swapped, its answer goes to the check store and not to the preference file, undo takes it back,
 * and the statistics count it; the guidelines come from comparisons.guidelines; find and open pairs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { readPreferencePairs, readPreferences } from '../../src/data/preferences';
import { checksFileOf, readChecks } from '../../src/data/checks';
import { open, workspace } from '../helpers/labeling-session';
import { filterPairs, labelsById, promptText } from '../../src/data/queue-filter';
import type { ComparisonPair } from '../../src/data/queue';
import type { StatusFilter } from '../../src/protocol/labeling';

test('labeling host: a quality check shows a labeled pair swapped, is stored apart, and counts in the statistics', async () => {
  const ws = workspace(3);
  let clock = 1_000_000;
  // 0.1: every pair shows its response B on the left, and a check follows every label it can.
  const { session, state, results } = open(ws, { random: () => 0.1, checkRate: 1, annotator: 'ana', now: () => clock });
  await session.handle({ type: 'ready' });
  assert.deepEqual([state().pair?.pairId, state().pair?.left, state().pair?.check], ['p0', ' second 0', undefined]);
  clock += 4_000;
  await session.handle({ type: 'label', id: 1, pairId: 'p0', choice: 'left' });
  const [first] = readPreferences(ws.preferences).records;
  assert.deepEqual([first.label, first.shown_left, first.duration_seconds], ['b', 'b', 4]);
  assert.equal(state().pair?.pairId, 'p1', 'no check of the pair just labeled');
  clock += 2_500;
  await session.handle({ type: 'label', id: 2, pairId: 'p1', choice: 'left' });

  const check = state().pair!;
  assert.deepEqual([check.pairId, check.check, check.left, check.right], ['p0', true, ' first 0', ' second 0']);
  assert.equal(state().done, 2, 'a check is not progress');
  const trainingPairs = readPreferencePairs(ws.preferences);
  clock += 3_000;
  await session.handle({ type: 'label', id: 3, pairId: 'p0', choice: 'right' });
  assert.deepEqual(results().at(-1), { type: 'result', id: 3, ok: true });
  assert.deepEqual(readPreferencePairs(ws.preferences), trainingPairs, 'the preference file is as it was');
  const [stored] = readChecks(checksFileOf(ws.preferences)).checks;
  assert.deepEqual(
    { ...stored, created_at: '' },
    { id: 'p0', label: 'b', annotator: 'ana', created_at: '', shown_left: 'a', duration_seconds: 3 },
  );
  assert.equal(state().pair?.pairId, 'p2');
  assert.deepEqual(state().statistics, {
    annotator: 'ana',
    labels: 2,
    selfAgreement: { checks: 1, agreed: 1 },
    // Both labels chose the left side; the check chose the right.
    positionBias: { decided: 3, left: 2 },
    medianSeconds: 3,
    agreement: [],
  });

  // Undo takes the check back first (it is due again), then the label before it.
  await session.handle({ type: 'undo', id: 4 });
  assert.deepEqual(readChecks(checksFileOf(ws.preferences)).checks, []);
  assert.deepEqual([state().pair?.pairId, state().pair?.check], ['p0', true]);
  await session.handle({ type: 'undo', id: 5 });
  assert.deepEqual([state().pair?.pairId, state().pair?.check, state().done], ['p1', undefined, 1]);
});

test('labeling host: with checks off no labeled pair comes back', async () => {
  const ws = workspace(3);
  const { session, state } = open(ws, { random: () => 0.1 });
  await session.handle({ type: 'ready' });
  for (const [id, pairId] of ['p0', 'p1', 'p2'].entries()) {
    assert.equal(state().pair?.pairId, pairId);
    await session.handle({ type: 'label', id, pairId, choice: 'tie' });
  }
  assert.equal(state().pair, undefined);
  assert.equal(fs.existsSync(checksFileOf(ws.preferences)), false);
});

test("labeling host: one annotator's checks of another's labels give Cohen's κ for the two", async () => {
  const ws = workspace(4);
  const ana = open(ws, { random: () => 0.9, annotator: 'ana' });
  await ana.session.handle({ type: 'ready' });
  for (const [id, pairId] of ['p0', 'p1', 'p2'].entries())
    await ana.session.handle({ type: 'label', id, pairId, choice: 'left' });
  const bo = open(ws, { random: () => 0.1, checkRate: 1, annotator: 'bo', otherWindow: true });
  await bo.session.handle({ type: 'ready' });
  await bo.session.handle({ type: 'label', id: 1, pairId: 'p3', choice: 'left' });
  // bo checks ana's pair p0 (0.1 of three candidates), which ana saw unswapped: now B is on the left.
  assert.deepEqual([bo.state().pair?.pairId, bo.state().pair?.left], ['p0', ' second 0']);
  await bo.session.handle({ type: 'label', id: 2, pairId: 'p0', choice: 'right' });
  const { agreement, labels, selfAgreement } = bo.state().statistics!;
  assert.deepEqual([labels, selfAgreement], [1, { checks: 0, agreed: 0 }]);
  assert.deepEqual(agreement, [{ annotators: ['ana', 'bo'], pairs: 1, agreement: 1, kappa: null }]);
});

test('labeling host: guidelines come from comparisons.guidelines, and not from outside the workspace', async () => {
  const ws = workspace(1);
  const write = (guidelines: string) =>
    fs.writeFileSync(
      ws.experiment,
      JSON.stringify({
        name: 'pets',
        model: 'tiny',
        comparisons: { prompts: 'p.jsonl', queue: 'queue.jsonl', preferences: 'prefs.jsonl', guidelines },
      }),
    );
  fs.mkdirSync(path.join(ws.dir, 'docs'));
  fs.writeFileSync(path.join(ws.dir, 'docs', 'how-to-label.md'), '# Prefer the true answer');
  fs.writeFileSync(path.join(ws.dir, 'guidelines.md'), '# Beside the queue');
  write('docs/how-to-label.md');
  const { session, state, posted } = open(ws);
  await session.handle({ type: 'ready' });
  assert.equal(state().guidelines, '# Prefer the true answer');
  write('../elsewhere.md');
  await session.refresh({ rescan: true });
  const last = posted.at(-1);
  assert.ok(last?.type === 'state' && last.state.kind === 'noQueue');
  assert.match(last.state.problems.join('\n'), /comparisons\.guidelines/);
});

test('queue filter: by status and by text in the prompt, either response or the id, ignoring case', () => {
  const pair = (id: string, prompt: ComparisonPair['prompt'], a = 'yes', b = 'no'): ComparisonPair => ({
    pair_id: id,
    prompt,
    response_a: a,
    response_b: b,
    candidate_ids: { a: `${id}-0`, b: `${id}-1` },
    generation: {},
  });
  const pairs = [
    pair('p0', 'What does a Cat eat?'),
    pair('p1', [{ role: 'user', content: 'Where do penguins live?' }], 'In the cold', 'On the moon'),
    pair('p2', 'Name a fish', 'A cod', 'A CAT'),
    pair('cat-3', 'Hello'),
  ];
  const labels = labelsById([
    { id: 'p0', label: 'a', prompt: 'x', chosen: 'y', rejected: 'n' },
    { id: 'p2', label: 'skip', prompt: 'x', response_a: 'y', response_b: 'n' },
    { id: 'p0', label: 'b', prompt: 'x', chosen: 'n', rejected: 'y' },
  ]);
  const ids = (text: string, status: StatusFilter) =>
    filterPairs(pairs, labels, { text, status }).map((p) => p.pair_id);
  assert.deepEqual(ids('', 'all'), ['p0', 'p1', 'p2', 'cat-3']);
  assert.deepEqual(ids('cat', 'all'), ['p0', 'p2', 'cat-3']);
  assert.deepEqual(ids('  MOON ', 'all'), ['p1']);
  assert.deepEqual(ids('', 'unlabeled'), ['p1', 'cat-3']);
  assert.deepEqual(ids('', 'b'), ['p0'], 'the latest label stands');
  assert.deepEqual(ids('', 'a'), []);
  assert.deepEqual(ids('cat', 'skip'), ['p2']);
  assert.equal(promptText(pairs[1].prompt), 'Where do penguins live?');
});

test('labeling host: find lists matches with their status; an opened labeled pair is labeled again in one append', async () => {
  const ws = workspace(12);
  const { session, state, results } = open(ws, { random: () => 0.9 });
  await session.handle({ type: 'ready' });
  await session.handle({ type: 'label', id: 1, pairId: 'p0', choice: 'left' });
  await session.handle({ type: 'label', id: 2, pairId: 'p1', choice: 'skip' });
  assert.equal(state().found, undefined, 'nothing is listed before a search');
  await session.handle({ type: 'find', text: 'QUESTION 1', status: 'all' });
  assert.deepEqual(state().found, {
    count: 3,
    pairs: [
      { pairId: 'p1', prompt: 'Question 1?', status: 'skip' },
      { pairId: 'p10', prompt: 'Question 10?', status: 'unlabeled' },
      { pairId: 'p11', prompt: 'Question 11?', status: 'unlabeled' },
    ],
  });
  await session.handle({ type: 'find', text: '', status: 'a' });
  assert.deepEqual(
    state().found?.pairs.map((p) => p.pairId),
    ['p0'],
  );

  await session.handle({ type: 'openPair', pairId: 'p0' });
  assert.deepEqual([state().pair?.pairId, state().pair?.labeled], ['p0', 'left']);
  const lines = () => fs.readFileSync(ws.preferences, 'utf8').trimEnd().split('\n').length;
  const before = lines();
  await session.handle({ type: 'label', id: 3, pairId: 'p0', choice: 'right' });
  assert.deepEqual(results().at(-1), { type: 'result', id: 3, ok: true });
  assert.equal(lines(), before + 2, 'the undo of the old label and the new one');
  assert.deepEqual(
    readPreferences(ws.preferences).records.map((r) => [r.id, r.label]),
    [
      ['p1', 'skip'],
      ['p0', 'b'],
    ],
  );
  assert.deepEqual([state().pair?.pairId, state().done], ['p2', 2], 'back to the queue');
  assert.deepEqual(
    state().found?.pairs.map((p) => p.pairId),
    [],
    'the search is redone on the new labels',
  );

  await session.handle({ type: 'openPair', pairId: 'p7' });
  assert.deepEqual([state().pair?.pairId, state().pair?.labeled], ['p7', undefined]);
  await session.handle({ type: 'openPair' });
  assert.equal(state().pair?.pairId, 'p2');
});

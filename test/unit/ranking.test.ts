/**
 * Ranking the candidates of a prompt at once: the pairwise labels a ranking implies, and ranking
 * mode in the labeling session with real files (one append per ranking, undone whole).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { candidatesOf, groupToRank, impliedLabel, rankingLabels } from '../../src/data/ranking';
import { ComparisonPair } from '../../src/data/queue';
import { readPreferencePairs, readPreferences } from '../../src/data/preferences';
import { open, workspace, Workspace } from '../helpers/labeling-session';

/** The C(n, 2) pairs of a prompt's n candidates, as Generate Comparisons writes them. */
function promptPairs(prompt: string, n: number): ComparisonPair[] {
  const pairs: ComparisonPair[] = [];
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++)
      pairs.push({
        pair_id: `${prompt}:${i}-${j}`,
        prompt,
        response_a: `answer ${i}`,
        response_b: `answer ${j}`,
        candidate_ids: { a: `${prompt}:${i}`, b: `${prompt}:${j}` },
        generation: {},
      });
  return pairs;
}

test('a ranking implies a label for every pair: the better ranked is chosen, equal ranks tie', () => {
  const pairs = promptPairs('q', 4);
  const group = groupToRank(pairs, pairs)!;
  assert.deepEqual(
    group.candidates.map((c) => c.id),
    ['q:0', 'q:1', 'q:2', 'q:3'],
  );
  // Best first: 2, then 0 and 3 tied, then 1.
  const ranks = [
    { candidate: 'q:2', rank: 1 },
    { candidate: 'q:0', rank: 2 },
    { candidate: 'q:3', rank: 2 },
    { candidate: 'q:1', rank: 4 },
  ];
  assert.deepEqual(
    rankingLabels(group, ranks).map(({ pair, label }) => `${pair.pair_id} ${label}`),
    ['q:0-1 a', 'q:0-2 b', 'q:0-3 tie', 'q:1-2 b', 'q:1-3 b', 'q:2-3 a'],
  );
  assert.throws(() => rankingLabels(group, ranks.slice(1)), /candidate q:2 has no rank/);
  assert.throws(() => rankingLabels(group, [...ranks, { candidate: 'x', rank: 5 }]), /x is not one of/);
  assert.throws(() => rankingLabels(group, [...ranks, ranks[0]]), /ranked twice/);
  assert.equal(
    impliedLabel(
      pairs[0],
      new Map([
        ['q:0', 3],
        ['q:1', 1],
      ]),
    ),
    'b',
  );
});

test("the group to rank is the first prompt with an unlabeled pair, with only that prompt's unlabeled pairs", () => {
  const pairs = [...promptPairs('p', 3), ...promptPairs('q', 4)];
  const unlabeled = pairs.filter((p) => !['p:0-1', 'p:0-2', 'p:1-2', 'q:0-1'].includes(p.pair_id));
  const group = groupToRank(pairs, unlabeled)!;
  assert.deepEqual(
    group.pairs.map((p) => p.pair_id),
    ['q:0-2', 'q:0-3', 'q:1-2', 'q:1-3', 'q:2-3'],
  );
  assert.deepEqual(candidatesOf(group.pairs), [
    { id: 'q:0', text: 'answer 0' },
    { id: 'q:2', text: 'answer 2' },
    { id: 'q:3', text: 'answer 3' },
    { id: 'q:1', text: 'answer 1' },
  ]);
  assert.equal(groupToRank(pairs, []), undefined);
});

function rankingWorkspace(): Workspace {
  const ws = workspace(0);
  const pairs = [...promptPairs('Name a cat', 4), ...promptPairs('Name a dog', 4)];
  fs.writeFileSync(ws.queue, pairs.map((p) => `${JSON.stringify(p)}\n`).join(''));
  return ws;
}

test('labeling host: ranking mode stores a ranking as the six pairs it implies, in one append, and undoes it whole', async () => {
  const ws = rankingWorkspace();
  const { session, state, results } = open(ws, { mode: 'ranking', random: () => 0.5, annotator: 'ana' });
  await session.handle({ type: 'ready' });
  const ranking = state().ranking!;
  assert.equal(state().mode, 'ranking');
  assert.equal(state().pair, undefined);
  assert.equal(ranking.pairIds.length, 6);
  assert.deepEqual([...ranking.candidates.map((c) => c.id)].sort(), [
    'Name a cat:0',
    'Name a cat:1',
    'Name a cat:2',
    'Name a cat:3',
  ]);
  const order = ['Name a cat:3', 'Name a cat:1', 'Name a cat:0', 'Name a cat:2'];
  const ranks = order.map((candidate, i) => ({ candidate, rank: i + 1 }));
  await session.handle({ type: 'rank', id: 1, pairIds: ranking.pairIds, ranks });
  assert.deepEqual(results().at(-1), { type: 'result', id: 1, ok: true });
  const records = readPreferences(ws.preferences).records;
  assert.equal(records.length, 6);
  assert.ok(records.every((r) => r.annotator === 'ana'));
  // Training reads six plain pairs whose chosen answer is ranked above the rejected one.
  const place = (text: unknown) => order.indexOf(`Name a cat:${String(text).slice(-1)}`);
  const { pairs } = readPreferencePairs(ws.preferences);
  assert.equal(pairs.length, 6);
  assert.ok(pairs.every((p) => place(p.chosen) < place(p.rejected)));
  assert.deepEqual([state().done, state().ranking?.candidates[0].id.startsWith('Name a dog')], [6, true]);

  await session.handle({ type: 'undo', id: 2 });
  assert.deepEqual(results().at(-1), { type: 'result', id: 2, ok: true });
  assert.deepEqual([readPreferences(ws.preferences).records.length, state().done], [0, 0]);
  assert.deepEqual(state().ranking?.pairIds, ranking.pairIds);
  assert.deepEqual(
    state().ranking?.candidates.map((c) => c.id),
    ranking.candidates.map((c) => c.id),
    'shown in the same order again',
  );
});

test('labeling host: a ranking of pairs that changed is refused; skip skips the prompt; the mode switches', async () => {
  const ws = rankingWorkspace();
  const { session, state, results } = open(ws, { mode: 'ranking', random: () => 0.2 });
  await session.handle({ type: 'ready' });
  const { pairIds, candidates } = state().ranking!;
  const ranks = candidates.map((c, i) => ({ candidate: c.id, rank: i + 1 }));
  await session.handle({ type: 'rank', id: 1, pairIds: pairIds.slice(1), ranks });
  const refused = results().at(-1);
  assert.ok(refused?.type === 'result' && !refused.ok && /pairs have changed/.test(refused.error ?? ''));
  await session.handle({ type: 'rank', id: 2, pairIds, ranks: ranks.slice(1) });
  assert.match(String((results().at(-1) as { error?: string }).error), /has no rank/);
  assert.equal(fs.existsSync(ws.preferences), false, 'nothing written');

  await session.handle({ type: 'rank', id: 3, pairIds, ranks: 'skip' });
  assert.deepEqual(
    readPreferences(ws.preferences).records.map((r) => r.label),
    Array(6).fill('skip'),
  );
  await session.handle({ type: 'setMode', mode: 'pairwise' });
  assert.deepEqual([state().mode, state().ranking, state().pair?.pairId], [undefined, undefined, 'Name a dog:0-1']);
  assert.deepEqual(state().pair?.position, { index: 1, count: 6 });
});

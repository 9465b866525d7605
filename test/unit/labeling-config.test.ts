/**
 * A mistake in an experiment file outside its `comparisons` section (a misspelt key, a missing
 * comma) keeps the labeling queue, with the file's error beside it; a mistake in the section
 * itself, or a path that leads outside the workspace, still leaves the queue out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ToWebview } from '../../src/protocol/labeling';
import { readPreferences } from '../../src/data/preferences';
import { LabelingSession } from '../../src/views/labeling/session';
import { workspace as labelingWorkspace } from '../helpers/labeling-session';

const COMPARISONS =
  '"comparisons": { "prompts": "prompts.jsonl", "queue": "queue.jsonl", "preferences": "prefs.jsonl" }';

/** A workspace with a queue of 3 pairs and an experiment file of this text. */
function workspace(experimentText: string) {
  const ws = labelingWorkspace(3);
  fs.writeFileSync(ws.experiment, experimentText);
  return ws;
}

async function viewOf(ws: ReturnType<typeof workspace>) {
  const posted: ToWebview[] = [];
  const session = new LabelingSession({
    post: (m) => posted.push(m),
    warn: () => {},
    runCommand: () => {},
    findExperiments: async () => [{ file: ws.experiment, workspaceFolder: ws.dir }],
    isTrusted: () => true,
    selection: { get: () => undefined, set: () => {} },
    history: { get: () => undefined, set: () => {} },
    random: () => 0.9,
  });
  await session.handle({ type: 'ready' });
  const state = () => {
    const last = posted.filter((m) => m.type === 'state').at(-1);
    assert.ok(last?.type === 'state');
    return last.state;
  };
  return { session, state, posted };
}

test('labeling: a misspelt key elsewhere in the experiment keeps the queue, its labels and labeling, with the error shown', async () => {
  const ws = workspace(`{ "name": "pets", "sft": { "data": "sft.jsonl" }, ${COMPARISONS} }`);
  const { session, state, posted } = await viewOf(ws);
  await session.handle({ type: 'label', id: 0, pairId: 'p0', choice: 'left' });
  fs.writeFileSync(
    ws.experiment,
    fs.readFileSync(ws.experiment, 'utf8').replace('"sft.jsonl"', '"sft.jsonl", "learning_rat": 1'),
  );
  await session.refresh({ rescan: true });
  const shown = state();
  assert.equal(shown.kind, 'queue');
  if (shown.kind !== 'queue') return;
  assert.deepEqual([shown.queues[0].label, shown.done, shown.total, shown.pair?.pairId], ['pets', 1, 3, 'p1']);
  assert.equal(shown.problems.length, 1);
  assert.match(shown.problems[0], /pets\.rlhf\.json: sft: Unrecognized key: "learning_rat"/);
  await session.handle({ type: 'label', id: 1, pairId: 'p1', choice: 'left' });
  assert.deepEqual(posted.filter((m) => m.type === 'result').at(-1), { type: 'result', id: 1, ok: true });
  assert.deepEqual(
    readPreferences(ws.preferences).records.map((r) => r.id),
    ['p0', 'p1'],
  );
});

test('labeling: a JSON syntax error outside the comparisons section keeps the queue; one inside it does not', async () => {
  const missingComma = workspace(`{ "name": "pets" "model": "tiny", ${COMPARISONS}, }`);
  const kept = (await viewOf(missingComma)).state();
  assert.ok(kept.kind === 'queue' && kept.total === 3, 'the queue shows');
  assert.match(kept.problems.join('\n'), /not valid JSON/);

  const insideSection = workspace(`{ "name": "pets", ${COMPARISONS.replace('"queue.jsonl",', '"queue.jsonl"')} }`);
  const lost = (await viewOf(insideSection)).state();
  assert.equal(lost.kind, 'noQueue', 'a queue read from a broken section could name the wrong files');
  assert.match(lost.problems.join('\n'), /not valid JSON/);

  const badSection = workspace(`{ "name": "pets", "comparisons": { "prompts": "p.jsonl", "queue": 3 } }`);
  const refused = (await viewOf(badSection)).state();
  assert.equal(refused.kind, 'noQueue');
  assert.match(refused.problems.join('\n'), /comparisons\.queue/);
});

test('labeling: with a mistake elsewhere, comparison files outside the workspace are still refused', async () => {
  const outside = workspace(
    `{ "name": "pets", "ppo": { "promptz": 1 }, "comparisons": { "prompts": "p.jsonl", "preferences": "../../x.jsonl" } }`,
  );
  const refused = (await viewOf(outside)).state();
  assert.equal(refused.kind, 'noQueue');
  assert.match(refused.problems.join('\n'), /ppo/);
});

test('labeling: each pair says where it is among the pairs of its prompt', async () => {
  const ws = workspace(`{ "name": "pets", ${COMPARISONS} }`);
  const pair = (id: string, prompt: string) =>
    JSON.stringify({ pair_id: id, prompt, response_a: ' a', response_b: ' b', candidate_ids: { a: 'x', b: 'y' } });
  const lines = [pair('c0', 'Cats?'), pair('d0', 'Dogs?'), pair('c1', 'Cats?'), pair('c2', 'Cats?')];
  fs.writeFileSync(path.join(ws.dir, 'queue.jsonl'), lines.join('\n') + '\n');
  const { session, state } = await viewOf(ws);
  const positions: unknown[] = [];
  for (let id = 0; id < 4; id++) {
    const shown = state();
    assert.ok(shown.kind === 'queue' && shown.pair);
    positions.push([shown.pair.pairId, shown.pair.position]);
    await session.handle({ type: 'label', id, pairId: shown.pair.pairId, choice: 'tie' });
  }
  assert.deepEqual(positions, [
    ['c0', { index: 1, count: 3 }],
    ['d0', { index: 1, count: 1 }],
    ['c1', { index: 2, count: 3 }],
    ['c2', { index: 3, count: 3 }],
  ]);
});

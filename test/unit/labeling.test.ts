/**
 * The labeling view's host side with real files: what the webview may send, labels on disk
 * before they are acknowledged, left/right mapped back to a/b, undo, reloads and two windows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { readPreferences } from '../../src/data/preferences';
import { storedLabel } from '../../src/views/labeling/shown';
import { open, workspace } from '../helpers/labeling-session';
import { tempDir } from '../helpers/temp';

test('labeling host: messages outside the protocol are rejected and logged, and change nothing', async () => {
  const ws = workspace(2);
  const { session, posted, warnings } = open(ws);
  await session.handle({ type: 'ready' });
  const before = posted.length;
  for (const bad of [
    { type: 'delete', path: '/etc/passwd' },
    { type: 'label', id: 1, pairId: 'p0', choice: 'a' },
    { type: 'label', id: 1, pairId: 'p0', choice: 'left', extra: true },
    { type: 'label', id: -1, pairId: 'p0', choice: 'left' },
    { type: 'runCommand', command: 'workbench.action.terminal.new' },
    'label',
    null,
  ]) {
    await session.handle(bad);
  }
  assert.equal(warnings.length, 7);
  assert.ok(warnings.every((w) => /rejected a message/.test(w)));
  assert.equal(posted.length, before);
  assert.equal(fs.existsSync(ws.preferences), false);
});

test('labeling host: a label is on disk before its acknowledgement, and the next pair follows', async () => {
  const ws = workspace(3);
  const onDisk: number[] = [];
  const { session, state, results } = open(ws, {
    random: () => 0.9,
    annotator: ' ada ',
    onPost: (m) => m.type === 'result' && onDisk.push(readPreferences(ws.preferences).records.length),
  });
  await session.handle({ type: 'ready' });
  assert.deepEqual([state().done, state().total, state().pair?.pairId], [0, 3, 'p0']);
  await session.handle({ type: 'label', id: 7, pairId: 'p0', choice: 'tie', rationale: '  same answer  ' });
  assert.deepEqual(results(), [{ type: 'result', id: 7, ok: true }]);
  assert.deepEqual(onDisk, [1]);
  const [record] = readPreferences(ws.preferences).records;
  assert.equal(record.label, 'tie');
  assert.equal(record.rationale, 'same answer');
  assert.equal(record.annotator, 'ada', 'the rlhf.annotator setting, trimmed');
  assert.deepEqual([state().done, state().pair?.pairId, state().canUndo], [1, 'p1', true]);
});

test('labeling host: left and right map back to the stored a and b, whichever way the pair is shown', async () => {
  assert.deepEqual(
    ['left', 'right', 'tie', 'both_bad', 'skip'].map((c) => storedLabel(c as never, true)),
    ['b', 'a', 'tie', 'both_bad', 'skip'],
  );
  assert.deepEqual(
    ['left', 'right'].map((c) => storedLabel(c as never, false)),
    ['a', 'b'],
  );
  for (const [random, choice] of [
    [0.1, 'left'],
    [0.1, 'right'],
    [0.9, 'left'],
    [0.9, 'right'],
  ] as const) {
    const ws = workspace(1);
    const { session, state } = open(ws, { random: () => random });
    await session.handle({ type: 'ready' });
    const shown = state().pair!;
    assert.deepEqual(
      random < 0.5 ? [shown.left, shown.right] : [shown.right, shown.left],
      [' second 0', ' first 0'],
      'swapped when random < 0.5',
    );
    await session.handle({ type: 'label', id: 1, pairId: 'p0', choice });
    const [record] = readPreferences(ws.preferences).records;
    assert.ok('chosen' in record);
    // The stored winner is the text the person saw on the side they chose.
    assert.equal(record.chosen, choice === 'left' ? shown.left : shown.right);
    assert.equal(record.label, record.chosen === ' first 0' ? 'a' : 'b');
  }
});

test('labeling host: the side each pair is shown on stays the same while the view lives', async () => {
  const ws = workspace(1);
  let draws = 0;
  const { session, state } = open(ws, { random: () => (draws++ % 2 === 0 ? 0.1 : 0.9) });
  await session.handle({ type: 'ready' });
  const first = state().pair!;
  await session.handle({ type: 'ready' });
  assert.deepEqual(state().pair, first);
  assert.equal(draws, 1);
});

test("labeling host: undo takes back this window's latest label, also after a reload, never another window's", async () => {
  const ws = workspace(4);
  const window1 = open(ws);
  await window1.session.handle({ type: 'ready' });
  await window1.session.handle({ type: 'label', id: 1, pairId: 'p0', choice: 'left' });
  await window1.session.handle({ type: 'label', id: 2, pairId: 'p1', choice: 'skip' });
  await window1.session.handle({ type: 'undo', id: 3 });
  assert.deepEqual(window1.results().at(-1), { type: 'result', id: 3, ok: true });
  assert.deepEqual([window1.state().done, window1.state().pair?.pairId], [1, 'p1']);

  const window2 = open(ws, { otherWindow: true });
  await window2.session.handle({ type: 'ready' });
  assert.equal(window2.state().canUndo, false, 'the other window has no label of its own to undo');
  await window2.session.handle({ type: 'label', id: 1, pairId: 'p1', choice: 'tie' });

  const reloaded = open(ws);
  await reloaded.session.handle({ type: 'ready' });
  assert.deepEqual([reloaded.state().done, reloaded.state().pair?.pairId, reloaded.state().canUndo], [2, 'p2', true]);
  await reloaded.session.handle({ type: 'undo', id: 1 });
  assert.deepEqual([reloaded.state().done, reloaded.state().pair?.pairId, reloaded.state().canUndo], [1, 'p0', false]);
  await reloaded.session.handle({ type: 'undo', id: 2 });
  assert.deepEqual(reloaded.results().at(-1), {
    type: 'result',
    id: 2,
    ok: false,
    error: 'There is no label to undo.',
  });
  assert.deepEqual(
    readPreferences(ws.preferences).records.map((r) => [r.id, r.label]),
    [['p1', 'tie']],
    "the other window's label stands",
  );
});

test('labeling host: a reload returns to the first unlabeled pair and loses no acknowledged label', async () => {
  const ws = workspace(6);
  const window1 = open(ws);
  await window1.session.handle({ type: 'ready' });
  for (const [id, pairId] of ['p0', 'p1', 'p3'].entries())
    await window1.session.handle({ type: 'label', id, pairId, choice: 'right' });
  const acknowledged = window1.results().filter((r) => r.type === 'result' && r.ok).length;

  const reloaded = open(ws);
  await reloaded.session.handle({ type: 'ready' });
  assert.deepEqual(
    [reloaded.state().done, reloaded.state().total, reloaded.state().pair?.pairId],
    [acknowledged, 6, 'p2'],
  );
  assert.deepEqual(
    readPreferences(ws.preferences).records.map((r) => r.id),
    ['p0', 'p1', 'p3'],
  );
});

test('labeling host: two windows labeling at once write every label once, on whole lines', async () => {
  const ws = workspace(40);
  const [window1, window2] = [open(ws), open(ws)];
  await Promise.all([window1.session.handle({ type: 'ready' }), window2.session.handle({ type: 'ready' })]);
  const label = (window: ReturnType<typeof open>, from: number) =>
    Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        window.session.handle({ type: 'label', id: i, pairId: `p${from + i}`, choice: 'left' }),
      ),
    );
  await Promise.all([label(window1, 0), label(window2, 20)]);
  const { records, errors } = readPreferences(ws.preferences);
  assert.deepEqual(errors, []);
  assert.deepEqual(records.map((r) => r.id).sort(), Array.from({ length: 40 }, (_, i) => `p${i}`).sort());
  assert.ok([window1, window2].every((w) => w.results().every((r) => r.type === 'result' && r.ok)));
  assert.equal(fs.existsSync(`${ws.preferences}.lock`), false);

  // A pair the other window has labeled meanwhile keeps that label.
  const late = workspace(1);
  const [first, second] = [open(late, { random: () => 0.9 }), open(late, { random: () => 0.9 })];
  await first.session.handle({ type: 'label', id: 1, pairId: 'p0', choice: 'left' });
  await second.session.handle({ type: 'label', id: 1, pairId: 'p0', choice: 'right' });
  assert.match((second.results()[0] as { error: string }).error, /already labeled/);
  assert.deepEqual(
    readPreferences(late.preferences).records.map((r) => r.label),
    ['a'],
  );

  // Both windows label the same pair at the same instant: the check runs under the file's lock, so one wins.
  const race = workspace(1);
  const rivals = [open(race), open(race)];
  await Promise.all(
    rivals.map((w, i) =>
      w.session.handle({ type: 'label', id: 1, pairId: 'p0', choice: i === 0 ? 'tie' : 'both_bad' }),
    ),
  );
  const answers = rivals.map((w) => w.results()[0] as { ok: boolean; error?: string });
  assert.deepEqual(answers.map((r) => r.ok).sort(), [false, true]);
  assert.match(answers.find((r) => !r.ok)!.error!, /already labeled/);
  assert.equal(readPreferences(race.preferences).records.length, 1);
});

test('labeling host: queue states, guidelines beside the queue, the picked queue, and the commands the view may run', async () => {
  const ws = workspace(0);
  const other = path.join(ws.dir, 'other.rlhf.json');
  fs.writeFileSync(
    other,
    JSON.stringify({ name: 'other', model: 'tiny', comparisons: { prompts: 'p.jsonl', queue: 'sub/q.jsonl' } }),
  );
  const { session, state, commands } = open(ws, { experiments: [ws.experiment, other] });
  await session.handle({ type: 'ready' });
  assert.deepEqual(
    state().queues.map((q) => q.label),
    ['pets', 'other'],
  );
  assert.deepEqual(
    [state().selected, state().total, state().pair, state().guidelines],
    [ws.experiment, 0, undefined, undefined],
  );
  fs.writeFileSync(path.join(ws.dir, 'guidelines.md'), '# Prefer kind answers');
  await session.refresh();
  assert.equal(state().guidelines, '# Prefer kind answers');
  await session.handle({ type: 'selectQueue', queue: other });
  assert.deepEqual([state().selected, state().guidelines], [other, undefined]);
  await session.handle({ type: 'runCommand', command: 'rlhf.generateComparisons' });
  assert.deepEqual(commands, ['rlhf.generateComparisons']);

  const broken = path.join(ws.dir, 'broken.rlhf.json');
  fs.writeFileSync(broken, '{');
  const none = open(ws, { experiments: [broken] });
  await none.session.handle({ type: 'ready' });
  const last = none.posted.at(-1);
  assert.ok(last?.type === 'state' && last.state.kind === 'noQueue');
  assert.match(
    last.state.problems.join('\n'),
    /broken\.rlhf\.json: not valid JSON/,
    'an experiment file that does not load shows as a problem',
  );
  assert.match(none.warnings.join('\n'), /not valid JSON/, 'and is logged');
});

test('labeling host: an experiment naming files outside the workspace is a problem by field; nothing outside is read, shown or written', async () => {
  const ws = workspace(0);
  const victim = tempDir('victim');
  const bashrc = path.join(victim, '.bashrc');
  const secret = 'export SECRET=hunter2\nalias ls="ls --color"\n';
  fs.writeFileSync(bashrc, secret);
  const pwned = {
    pair_id: '$(touch PWNED)',
    prompt: 'Q?',
    response_a: ' a',
    response_b: ' b',
    candidate_ids: { a: 'x', b: 'y' },
    generation: {},
  };
  fs.writeFileSync(path.join(ws.dir, 'evil-queue.jsonl'), `${JSON.stringify(pwned)}\n`);
  const evil = (name: string, comparisons: object) => {
    const file = path.join(ws.dir, `${name}.rlhf.json`);
    fs.writeFileSync(
      file,
      JSON.stringify({ name, model: 'tiny', comparisons: { prompts: 'p.jsonl', ...comparisons } }),
    );
    return file;
  };
  const relative = path.relative(ws.dir, bashrc);
  const experiments = [
    [evil('relative', { queue: 'evil-queue.jsonl', preferences: relative }), 'comparisons.preferences'],
    [evil('absolute', { queue: 'evil-queue.jsonl', preferences: bashrc }), 'comparisons.preferences'],
    [evil('queue', { queue: bashrc }), 'comparisons.queue'],
  ];
  if (process.platform !== 'win32') {
    fs.symlinkSync(victim, path.join(ws.dir, 'link-to-outside'));
    experiments.push([
      evil('symlink', { queue: 'evil-queue.jsonl', preferences: 'link-to-outside/.bashrc' }),
      'comparisons.preferences',
    ]);
  }
  for (const [experiment, field] of experiments) {
    const { session, posted, results } = open(ws, { experiments: [experiment] });
    await session.handle({ type: 'ready' });
    const state = posted.at(-1);
    assert.ok(state?.type === 'state' && state.state.kind === 'noQueue', `${experiment}: no queue to label`);
    assert.equal(state.state.problems.length, 1);
    assert.ok(state.state.problems[0].startsWith(`${experiment}: ${field}: `), state.state.problems[0]);
    assert.match(state.state.problems[0], /is outside the workspace folder/);
    await session.handle({ type: 'label', id: 1, pairId: pwned.pair_id, choice: 'left' });
    assert.equal(results()[0].type === 'result' && results()[0].ok, false);
    assert.doesNotMatch(JSON.stringify(posted), /hunter2|SECRET|alias/, 'nothing of the file outside is shown');
    assert.equal(fs.readFileSync(bashrc, 'utf8'), secret, 'the file outside is left as it was');
  }
  assert.deepEqual(fs.readdirSync(victim).sort(), ['.bashrc']);

  // Beside a queue that is fine, the refused experiment shows in its problems, and its pairs cannot be labeled.
  const { session, state, results } = open(ws, { experiments: [ws.experiment, experiments[0][0]] });
  await session.handle({ type: 'ready' });
  await session.handle({ type: 'selectQueue', queue: experiments[0][0] });
  assert.deepEqual(
    state().queues.map((q) => q.label),
    ['pets'],
  );
  assert.match(
    state().problems.join('\n'),
    /relative\.rlhf\.json: comparisons\.preferences: .* is outside the workspace folder/,
  );
  await session.handle({ type: 'label', id: 1, pairId: pwned.pair_id, choice: 'left' });
  assert.deepEqual(results(), [{ type: 'result', id: 1, ok: false, error: 'This pair is not in the selected queue.' }]);
  assert.equal(fs.readFileSync(bashrc, 'utf8'), secret);
});

test('labeling host: in Restricted Mode the queue shows read-only, and no label or undo is written until trust is granted', async () => {
  const ws = workspace(3);
  const trusted = open(ws, { random: () => 0.9 });
  await trusted.session.handle({ type: 'label', id: 1, pairId: 'p0', choice: 'left' });
  const before = fs.readFileSync(ws.preferences, 'utf8');

  let isTrusted = false;
  const restricted = open(ws, { random: () => 0.9, trusted: () => isTrusted });
  await restricted.session.handle({ type: 'ready' });
  assert.deepEqual(
    [
      restricted.state().restricted,
      restricted.state().pair?.pairId,
      restricted.state().done,
      restricted.state().canUndo,
    ],
    [true, 'p1', 1, false],
  );
  await restricted.session.handle({ type: 'label', id: 2, pairId: 'p1', choice: 'right' });
  await restricted.session.handle({ type: 'undo', id: 3 });
  const refusal = 'Labels are not saved in Restricted Mode: trust the workspace to label.';
  assert.deepEqual(restricted.results(), [
    { type: 'result', id: 2, ok: false, error: refusal },
    { type: 'result', id: 3, ok: false, error: refusal },
  ]);
  assert.equal(fs.readFileSync(ws.preferences, 'utf8'), before, 'nothing written');
  await restricted.session.handle({ type: 'runCommand', command: 'workbench.trust.manage' });
  assert.deepEqual(restricted.commands, ['workbench.trust.manage']);

  isTrusted = true;
  await restricted.session.refresh();
  assert.deepEqual([restricted.state().restricted, restricted.state().canUndo], [false, true]);
  await restricted.session.handle({ type: 'label', id: 4, pairId: 'p1', choice: 'right' });
  assert.deepEqual(
    readPreferences(ws.preferences).records.map((r) => [r.id, r.label]),
    [
      ['p0', 'a'],
      ['p1', 'b'],
    ],
  );
});

test(
  'labeling host: queue files that become symlinks out of the workspace after the scan are neither read nor written',
  { skip: process.platform === 'win32' },
  async () => {
    const ws = workspace(2);
    const victim = tempDir('victim');
    const bashrc = path.join(victim, '.bashrc');
    fs.writeFileSync(bashrc, 'export SECRET=hunter2\n');
    const { session, posted, state, results } = open(ws, { random: () => 0.9 });
    await session.handle({ type: 'ready' });
    fs.symlinkSync(bashrc, ws.preferences);
    await session.handle({ type: 'label', id: 1, pairId: 'p0', choice: 'left' });
    const [result] = results();
    assert.ok(
      result.type === 'result' &&
        !result.ok &&
        result.error?.startsWith(
          `Not saved: ${ws.experiment}: comparisons.preferences: ${ws.preferences} (it leads to`,
        ),
      JSON.stringify(result),
    );
    assert.equal(fs.readFileSync(bashrc, 'utf8'), 'export SECRET=hunter2\n');
    assert.deepEqual([state().total, state().pair, state().canUndo], [0, undefined, false]);
    assert.match(state().problems.join('\n'), /comparisons\.preferences: .* is outside the workspace folder/);
    assert.doesNotMatch(JSON.stringify(posted), /hunter2/);
  },
);

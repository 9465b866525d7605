import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import {
  cohensKappa,
  contingencyTable,
  Judgement,
  medianSeconds,
  pairwiseAgreement,
  positionBias,
  selfAgreement,
} from '../../src/data/agreement';
import { appendCheck, checksFileOf, drawCheck, readChecks, readJudgements, undoCheck } from '../../src/data/checks';
import { appendPreference, readPreferencePairs } from '../../src/data/preferences';
import { dataFiles } from '../../src/data/formats/source';
import { Label } from '../../src/data/preference-record';
import { tempDir } from '../helpers/temp';

const near = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-4, `${actual} ≠ ${expected}`);

test("Cohen's κ: the textbook 2×2 tables", () => {
  // Wikipedia, "Cohen's kappa": 50 proposals read by two readers, p_o = 0.7, p_e = 0.5.
  near(
    cohensKappa([
      [20, 5],
      [10, 15],
    ]),
    0.4,
  );
  // The same page's two tables with equal p_o = 0.6 and different marginals.
  near(
    cohensKappa([
      [45, 15],
      [25, 15],
    ]),
    0.1304,
  );
  near(
    cohensKappa([
      [25, 35],
      [5, 35],
    ]),
    0.2593,
  );
  near(
    cohensKappa([
      [10, 0],
      [0, 10],
    ]),
    1,
  );
  near(
    cohensKappa([
      [0, 5],
      [5, 0],
    ]),
    -1,
  );
  near(
    cohensKappa([
      [5, 5],
      [5, 5],
    ]),
    0,
  );
});

test("Cohen's κ: a 3×3 table, and where κ is undefined", () => {
  // p_o = (25 + 20 + 20) / 100 = 0.65; rows 40, 30, 30 and columns 35, 35, 30: p_e = 0.14 + 0.105 + 0.09.
  near(
    cohensKappa([
      [25, 10, 5],
      [5, 20, 5],
      [5, 5, 20],
    ]),
    (0.65 - 0.335) / (1 - 0.335),
  );
  assert.ok(
    Number.isNaN(
      cohensKappa([
        [0, 0],
        [0, 0],
      ]),
    ),
  );
  assert.ok(
    Number.isNaN(
      cohensKappa([
        [7, 0],
        [0, 0],
      ]),
    ),
    'both raters always said the same one thing',
  );
  assert.throws(() => cohensKappa([[1, 2]]), /square/);
});

test('contingency tables leave skips out', () => {
  const table = contingencyTable([
    ['a', 'a'],
    ['a', 'b'],
    ['tie', 'both_bad'],
    ['skip', 'a'],
  ]);
  assert.deepEqual(table, [
    [1, 1, 0, 0],
    [0, 0, 0, 0],
    [0, 0, 0, 1],
    [0, 0, 0, 0],
  ]);
});

const judge = (annotator: string, pairId: string, label: Label, extra: Partial<Judgement> = {}): Judgement => ({
  annotator,
  pairId,
  label,
  ...extra,
});

test('pairwise agreement: κ per two annotators on the pairs both judged, first judgement each', () => {
  const judgements = [
    // ana and bo both judge p1..p4: agree on p1, p2, p4 (2 a, 1 b on ana's side).
    ...(['a', 'a', 'b', 'b'] as Label[]).map((l, i) => judge('ana', `p${i + 1}`, l)),
    ...(['a', 'a', 'a', 'b'] as Label[]).map((l, i) => judge('bo', `p${i + 1}`, l)),
    judge('bo', 'p1', 'b'), // a later judgement of p1 by bo: not counted
    judge('cy', 'p9', 'a'), // no pair in common with anyone
    judge('', 'p1', 'b'), // no annotator
    judge('cy', 'p2', 'skip'),
  ];
  const result = pairwiseAgreement(judgements);
  assert.equal(result.length, 1);
  const [ab] = result;
  assert.deepEqual(ab.annotators, ['ana', 'bo']);
  assert.equal(ab.pairs, 4);
  assert.equal(ab.agreement, 0.75);
  // Table (ana rows, bo columns) over a, b: [[2, 0], [1, 1]]: p_o 0.75, p_e 0.5·0.75 + 0.5·0.25 = 0.5.
  near(ab.kappa, 0.5);
});

test('self-agreement compares stored labels, so a swapped check agrees when it picks the same response', () => {
  const labels = [
    judge('ana', 'p1', 'a', { shownLeft: 'a' }),
    judge('ana', 'p2', 'b', { shownLeft: 'a' }),
    judge('ana', 'p3', 'tie'),
    judge('ana', 'p4', 'skip'),
    judge('bo', 'p5', 'a'),
  ];
  const checks = [
    judge('ana', 'p1', 'a', { shownLeft: 'b' }), // same response, now shown on the right: agrees
    judge('ana', 'p2', 'a', { shownLeft: 'b' }), // picked the left side both times: disagrees
    judge('ana', 'p3', 'tie', { shownLeft: 'b' }),
    judge('ana', 'p4', 'a', { shownLeft: 'b' }), // the label was a skip: not counted
    judge('ana', 'p5', 'a', { shownLeft: 'b' }), // bo's pair: agreement between people, not self
  ];
  assert.deepEqual(selfAgreement(labels, checks), { checks: 3, agreed: 2 });
});

test('position bias counts wins of the left side among decided judgements that say the side', () => {
  const judgements = [
    judge('ana', 'p1', 'a', { shownLeft: 'a' }),
    judge('ana', 'p2', 'b', { shownLeft: 'b' }),
    judge('ana', 'p3', 'a', { shownLeft: 'b' }),
    judge('ana', 'p4', 'tie', { shownLeft: 'a' }),
    judge('ana', 'p5', 'a'),
  ];
  assert.deepEqual(positionBias(judgements), { decided: 3, left: 2 });
});

test('median seconds per label', () => {
  assert.equal(medianSeconds([]), undefined);
  assert.equal(medianSeconds([judge('a', 'p', 'a', { seconds: 9 }), judge('a', 'q', 'a')]), 9);
  const times = [3, 1, 10, 4].map((seconds, i) => judge('a', `p${i}`, 'a', { seconds }));
  assert.equal(medianSeconds(times), 3.5);
});

test('drawCheck: at the rate asked, a labeled pair the annotator has not checked, never a skip or the one just labeled', () => {
  const labels = [judge('ana', 'p1', 'a'), judge('ana', 'p2', 'skip'), judge('bo', 'p3', 'b'), judge('ana', 'p4', 'b')];
  const checks = [judge('ana', 'p4', 'b')];
  const options = { annotator: 'ana', rate: 0.05, except: 'p1' };
  assert.equal(drawCheck(labels, checks, { ...options, random: () => 0.06 }), undefined);
  assert.equal(drawCheck(labels, checks, { ...options, random: () => 0.01 }), 'p3');
  assert.equal(drawCheck(labels, checks, { ...options, rate: 0, random: () => 0 }), undefined);
  assert.equal(drawCheck(labels, [...checks, judge('ana', 'p3', 'b')], { ...options, random: () => 0 }), undefined);
  const rolls = [0.04, 0.99];
  assert.equal(drawCheck(labels, [], { annotator: 'bo', rate: 0.05, random: () => rolls.shift()! }), 'p4');
});

test('checks are kept apart from the preference file: training reads the same pairs, folders skip them', async () => {
  const dir = tempDir('checks');
  const prefs = path.join(dir, 'train.jsonl');
  await appendPreference(prefs, {
    id: 'p1',
    label: 'a',
    prompt: 'Q',
    chosen: ' yes',
    rejected: ' no',
    annotator: 'ana',
    shown_left: 'b',
    duration_seconds: 2.5,
  });
  const before = readPreferencePairs(prefs);
  const checks = checksFileOf(prefs);
  assert.equal(checks, path.join(dir, '.train.checks.jsonl'));
  const check = {
    id: 'p1',
    label: 'b' as const,
    annotator: 'ana',
    created_at: new Date().toISOString(),
    shown_left: 'a' as const,
  };
  await appendCheck(checks, check);
  await appendCheck(checks, { ...check, label: 'a', duration_seconds: 1 });
  assert.deepEqual(readPreferencePairs(prefs), before);
  assert.deepEqual(dataFiles(dir), [prefs]);
  await undoCheck(checks, 'p1');
  assert.deepEqual(readChecks(checks).checks, [check]);
  const { labels, checks: judged } = readJudgements(prefs);
  assert.deepEqual(labels, [judge('ana', 'p1', 'a', { shownLeft: 'b', seconds: 2.5 })]);
  assert.deepEqual(selfAgreement(labels, judged), { checks: 1, agreed: 0 });
  await undoCheck(checks, 'p1');
  await assert.rejects(undoCheck(checks, 'p1'), /no check to undo/);
  fs.appendFileSync(checks, '{"id": "p2", "label": "left", "created_at": "2025-01-01T00:00:00Z", "shown_left": "a"}\n');
  assert.match(readChecks(checks).errors[0].message, /field "label" must be one of/);
  assert.equal(readChecks(checks).errors[0].line, 5);
});

/**
 * What labels teach: a reward model's margins on a queue and a DPO policy's implicit reward
 * margins (scored by the training process's code, cached by pair and model), the labels a model
 * confidently contradicts, the queue ordered by its uncertainty, relabeling in the append-only
 * store, and pairs sampled from a run's model tagged with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { saveCheckpoint } from '../../src/model/checkpoint';
import { presetConfig, resizeConfig } from '../../src/model/config';
import { initParams } from '../../src/model/decoder';
import {
  agreement,
  appendMargins,
  disagreements,
  readMargins,
  scoredLabels,
  uncertaintyOrder,
  unscoredPairs,
} from '../../src/data/margins';
import {
  appendPreference,
  readPreferences,
  relabelPreference,
  restorePreference,
  undoPreference,
} from '../../src/data/preferences';
import { ComparisonPair, labelPair, readQueue } from '../../src/data/queue';
import { generateCandidates } from '../../src/train/comparisons';
import { scoreQueueMargins } from '../../src/train/queue-margins';
import { parseExperiment } from '../../src/experiment/config';
import { scoreQueue } from '../../src/runner/runner';
import { RunSupervisor } from '../../src/runner/supervisor';
import { RunRegistry } from '../../src/runs/registry';
import { Scorer } from '../../src/train/scorer';
import { Rng } from '../../src/util/rng';
import { scratchFolder } from '../helpers/checkpoints';
import { writeTinyTokenizer } from '../helpers/tokenizers';

const { scratch, freshDir } = scratchFolder('labeling-margins');
const root = path.resolve(__dirname, '..', '..');
/** The actual training entry, under tsx. */
const processOptions = {
  entry: path.join(root, 'src', 'runner', 'train-process.ts'),
  execArgv: ['--import', 'tsx'],
  cwd: root,
};

function pair(id: string, a = ' hello', b = ' world', prompt = 'hello'): ComparisonPair {
  return {
    pair_id: id,
    prompt,
    response_a: a,
    response_b: b,
    candidate_ids: { a: `${id}-a`, b: `${id}-b` },
    generation: {},
  };
}

function writeQueue(file: string, pairs: ComparisonPair[]): void {
  fs.writeFileSync(file, pairs.map((p) => `${JSON.stringify(p)}\n`).join(''));
}

/** A one-layer model over the tiny word-level tokenizer; `score` gives it a random reward head. */
function tinyModel(name: string, head: 'lm' | 'score', seed: number): string {
  const config = resizeConfig(presetConfig('tiny'), { vocabSize: 8, nPositions: 12, nEmbd: 16, nLayer: 1, nHead: 2 });
  const params = initParams(config, new Rng(seed));
  if (head === 'score') {
    const weight = Float32Array.from({ length: 16 }, (_, i) => Math.sin(seed + i));
    params.set('score.weight', { dtype: 'float32', shape: [1, 16], data: weight });
  }
  const dir = path.join(scratch, name);
  saveCheckpoint(dir, { config, params });
  writeTinyTokenizer(dir, { eos_token: '</s>' });
  return dir;
}

test('the margins cache keeps each model apart, the last line of a pair wins, and bad lines are reported', async () => {
  const dir = freshDir();
  fs.mkdirSync(dir);
  const file = path.join(dir, 'margins.jsonl');
  assert.equal(readMargins(file, 'm1').margins.size, 0);
  await appendMargins(file, [
    { pair_id: 'p1', model: 'm1', margin: 0.5 },
    { pair_id: 'p1', model: 'm2', margin: -3 },
  ]);
  fs.appendFileSync(file, '{"pair_id": "p2", "model": "m1", "margin": "big"}\n');
  await appendMargins(file, [{ pair_id: 'p1', model: 'm1', margin: 1.5 }]);
  const { margins, errors } = readMargins(file, 'm1');
  assert.deepEqual([...margins], [['p1', 1.5]]);
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /margin/);
  assert.equal(errors[0].line, 3);
  assert.deepEqual([...readMargins(file, 'm2').margins], [['p1', -3]]);
  assert.deepEqual(
    unscoredPairs([pair('p1'), pair('p2')], margins).map((p) => p.pair_id),
    ['p2'],
  );
});

test('a disagreement is a decided label the model contradicts by more than the threshold, most confident first', () => {
  const margins = new Map([
    ['agree', 2],
    ['slight', -0.5],
    ['strong', 1.2],
    ['strongest', -4],
    ['tie', -9],
  ]);
  const records = [
    labelPair(pair('agree'), 'a'),
    labelPair(pair('slight'), 'a'),
    labelPair(pair('strong'), 'b'),
    labelPair(pair('strongest'), 'a'),
    labelPair(pair('tie'), 'tie'),
    labelPair(pair('unscored'), 'b'),
  ];
  const labels = scoredLabels(records, margins);
  assert.deepEqual(
    labels.map((l) => [l.pairId, l.label, agreement(l)]),
    [
      ['agree', 'a', 2],
      ['slight', 'a', -0.5],
      ['strong', 'b', -1.2],
      ['strongest', 'a', -4],
    ],
  );
  assert.deepEqual(
    disagreements(labels).map((l) => l.pairId),
    ['strongest', 'strong'],
  );
  assert.deepEqual(
    disagreements(labels, 0).map((l) => l.pairId),
    ['strongest', 'strong', 'slight'],
  );
  assert.throws(() => disagreements(labels, -1), /at least 0/);
});

test('uncertainty order puts the smallest |margin| first, ties and unscored pairs in queue order', () => {
  const pairs = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'].map((id) => pair(id));
  const margins = new Map([
    ['p0', 3],
    ['p2', -0.2],
    ['p3', 0.2],
    ['p5', -1],
  ]);
  assert.deepEqual(
    uncertaintyOrder(pairs, margins).map((p) => p.pair_id),
    ['p2', 'p3', 'p5', 'p0', 'p1', 'p4'],
  );
  assert.deepEqual(
    uncertaintyOrder(pairs, new Map()).map((p) => p.pair_id),
    pairs.map((p) => p.pair_id),
  );
});

test('a relabel replaces the standing label of one pair and keeps every other record', async () => {
  const file = path.join(freshDir(), 'preferences.jsonl');
  fs.mkdirSync(path.dirname(file));
  await appendPreference(file, labelPair(pair('p1'), 'a', { annotator: 'ann' }));
  await appendPreference(file, labelPair(pair('p2'), 'b'));
  await appendPreference(file, labelPair(pair('p3'), 'tie'));
  await relabelPreference(file, labelPair(pair('p2'), 'a', { rationale: 'looked again' }));
  const { records, errors } = readPreferences(file);
  assert.deepEqual(errors, []);
  assert.deepEqual(
    records.map((r) => [r.id, r.label]),
    [
      ['p1', 'a'],
      ['p3', 'tie'],
      ['p2', 'a'],
    ],
  );
  assert.equal(records[2].rationale, 'looked again');
  assert.equal(records[0].annotator, 'ann');
  // The old label is still in the file, taken back by a tombstone.
  assert.equal(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 5);
  await undoPreference(file, 'p1');
  await assert.rejects(relabelPreference(file, labelPair(pair('p1'), 'b')), /no label to replace/);
  await assert.rejects(relabelPreference(file, { ...labelPair(pair('p3'), 'a'), chosen: 3 } as never), /not a valid/);
  assert.deepEqual(
    readPreferences(file).records.map((r) => r.id),
    ['p3', 'p2'],
  );
});

test('restoring takes a relabel back: the replaced label stands again, as it was, and only while it is replaced', async () => {
  const file = path.join(freshDir(), 'preferences.jsonl');
  fs.mkdirSync(path.dirname(file));
  const first = labelPair(pair('p1'), 'a', { rationale: 'first look' });
  await appendPreference(file, first);
  await appendPreference(file, labelPair(pair('p2'), 'b'));
  const replaced = await relabelPreference(file, labelPair(pair('p1'), 'b'));
  assert.equal(replaced, 1);
  const second = await relabelPreference(file, labelPair(pair('p1'), 'tie'));
  assert.equal(second, 4, 'the line of the label standing before');
  await restorePreference(file, 'p1', second);
  assert.deepEqual(
    readPreferences(file).records.map((r) => [r.id, r.label]),
    [
      ['p2', 'b'],
      ['p1', 'b'],
    ],
  );
  await restorePreference(file, 'p1', replaced);
  assert.deepEqual(readPreferences(file).records.at(-1), first);
  const lines = fs.readFileSync(file, 'utf8');
  await assert.rejects(restorePreference(file, 'p1', replaced), /stands already/);
  await assert.rejects(restorePreference(file, 'p2', replaced), /no earlier label of pair p2/);
  await assert.rejects(restorePreference(file, 'p1', 3), /no earlier label of pair p1/, 'line 3 is an undo');
  await undoPreference(file, 'p1');
  await assert.rejects(restorePreference(file, 'p1', second), /no label to undo/);
  assert.equal(fs.readFileSync(file, 'utf8').length, lines.length + '{"undo":"p1"}\n'.length, 'refusals write nothing');
  assert.deepEqual(readPreferences(file).errors, []);
});

test("the reward model's margins are r(A) − r(B), scored once per pair and model, long pairs left out", async () => {
  const dir = freshDir();
  fs.mkdirSync(dir);
  const queue = path.join(dir, 'queue.jsonl');
  const cache = path.join(dir, 'margins.jsonl');
  const long = ' hello world'.repeat(8);
  writeQueue(queue, [
    pair('p1', ' hello', ' world !'),
    pair('p2', ' world', ' hello hello'),
    pair('p3', long, ' world'),
    { ...pair('p4', 'hello', 'world'), prompt: [{ role: 'user', content: 'hello' }] },
  ]);
  const model = tinyModel('rm-a', 'score', 1);
  const runtime = { provider: 'cpu' as const, threads: 1 };
  const first = await scoreQueueMargins({ model, queue, cache, runtime, batchSize: 1 });
  assert.deepEqual(first, { scored: 3, cached: 0, skipped: 1, stopped: false });
  const { margins } = readMargins(cache, model);
  assert.deepEqual([...margins.keys()], ['p1', 'p2', 'p4']);

  const scorer = await Scorer.load(model, runtime);
  const scores = await scorer.scoreTexts([
    { prompt: 'hello', response: ' hello' },
    { prompt: 'hello', response: ' world !' },
  ]);
  await scorer.release();
  assert.ok(Math.abs(margins.get('p1')! - (scores[0] - scores[1])) < 1e-5);
  assert.notEqual(margins.get('p1'), 0);

  const again = await scoreQueueMargins({ model, queue, cache, runtime });
  assert.deepEqual(again, { scored: 0, cached: 3, skipped: 1, stopped: false });
  const other = tinyModel('rm-b', 'score', 2);
  assert.equal((await scoreQueueMargins({ model: other, queue, cache, runtime })).scored, 3);
  assert.notEqual(readMargins(cache, other).margins.get('p1'), margins.get('p1'));
});

test("pairs sampled from a run's model carry its name, and a prompt is sampled again for each model", async () => {
  const dir = freshDir();
  fs.mkdirSync(dir);
  const prompts = path.join(dir, 'prompts.jsonl');
  fs.writeFileSync(prompts, ['hello', 'world'].map((p) => JSON.stringify({ prompt: p })).join('\n'));
  const queue = path.join(dir, 'queue.jsonl');
  const model = tinyModel('policy', 'lm', 3);
  const sample = (source?: string) =>
    generateCandidates({
      model,
      prompts,
      queue,
      source,
      n: 3,
      maxNewTokens: 4,
      temperature: 2,
      provider: 'cpu',
      threads: 1,
    });
  const plain = await sample();
  assert.ok(plain.pairs > 0);
  const tagged = await sample('demo DPO #2');
  assert.equal(tagged.alreadyQueued, 0, 'prompts queued from another model are sampled again');
  assert.ok(tagged.pairs > 0);
  const { pairs, errors } = readQueue(queue);
  assert.deepEqual(errors, []);
  assert.equal(pairs.length, plain.pairs + tagged.pairs, 'no pair id is shared between the two');
  assert.deepEqual(
    pairs.map((p) => p.source),
    [...Array(plain.pairs).fill(undefined), ...Array(tagged.pairs).fill('demo DPO #2')],
  );
  assert.equal((await sample('demo DPO #2')).alreadyQueued, 2);
  fs.appendFileSync(queue, `${JSON.stringify({ ...pair('bad'), source: 7 })}\n`);
  assert.match(readQueue(queue).errors[0].message, /source/);
});

test("a DPO policy's margin is β·[(log πθ − log πref)(A) − (log πθ − log πref)(B)]", async () => {
  const dir = freshDir();
  fs.mkdirSync(dir);
  const queue = path.join(dir, 'queue.jsonl');
  writeQueue(queue, [
    pair('p1', ' hello', ' world !'),
    pair('p2', ' world world', ' hello'),
    pair('p3', ' ! hello', ' world'),
  ]);
  const [policy, reference, other] = [
    tinyModel('dpo-policy', 'lm', 4),
    tinyModel('dpo-ref', 'lm', 5),
    tinyModel('x', 'lm', 6),
  ];
  const runtime = { provider: 'cpu' as const, threads: 1 };
  const section = (beta: number) =>
    parseExperiment({ model: 'tiny', dpo: { data: 'prefs.jsonl', beta } }, 'exp.rlhf.json').dpo!;
  /** Each pair's margin of `model` against `ref`, scored into a cache of its own. */
  const margins = async (model: string, ref: string, beta = 0.1) => {
    const cache = path.join(freshDir(), 'margins.jsonl');
    fs.mkdirSync(path.dirname(cache));
    const dpo = { reference: ref, seed: 0, section: section(beta) };
    const summary = await scoreQueueMargins({ model, queue, cache, runtime, dpo });
    assert.equal(summary.scored, 3);
    return [...readMargins(cache, model).margins.values()];
  };
  const m = await margins(policy, reference);
  assert.ok(m.every((x) => x !== 0 && Number.isFinite(x)));
  assert.deepEqual(await margins(policy, policy), [0, 0, 0], 'the reference itself has no preference');
  const doubled = await margins(policy, reference, 0.2);
  doubled.forEach((x, i) => assert.ok(Math.abs(x - 2 * m[i]) < 1e-5, 'linear in β'));
  // The reference's log-probs cancel: margin(θ | ref) = margin(θ | x) − margin(ref | x) for any model x.
  const [viaOther, refViaOther] = [await margins(policy, other), await margins(reference, other)];
  m.forEach((x, i) => assert.ok(Math.abs(x - (viaOther[i] - refViaOther[i])) < 1e-5, `pair ${i}`));
});

test('score-queue runs in a training process: margins land in the cache, and a model that cannot score says why', async () => {
  const dir = freshDir();
  fs.mkdirSync(dir);
  const queue = path.join(dir, 'queue.jsonl');
  const cache = path.join(dir, 'margins.jsonl');
  writeQueue(queue, [pair('p1', ' hello', ' world'), pair('p2', ' world', ' hello !')]);
  const model = tinyModel('rm-process', 'score', 7);
  const runtime = { provider: 'cpu' as const, threads: 1 };
  await scoreQueue({ model, queue, cache, runtime }, processOptions);
  assert.deepEqual([...readMargins(cache, model).margins.keys()], ['p1', 'p2']);
  await assert.rejects(
    scoreQueue({ model: tinyModel('lm-process', 'lm', 8), queue, cache, runtime }, processOptions),
    /not a reward model/,
  );
});

test("the comparisons stage samples from a run's model when told to, and its pairs carry the run's name", async () => {
  const dir = freshDir();
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'prompts.jsonl'), `${JSON.stringify({ prompt: 'hello' })}\n`);
  const configFile = path.join(dir, 'pets.rlhf.json');
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      name: 'pets',
      model: 'no-such-model',
      runtime: { provider: 'cpu', threads: 1 },
      comparisons: {
        prompts: 'prompts.jsonl',
        queue: 'queue.jsonl',
        preferences: 'prefs.jsonl',
        num_candidates: 3,
        max_new_tokens: 4,
        temperature: 2,
      },
    }),
  );
  const model = tinyModel('policy-run', 'lm', 9);
  const registry = new RunRegistry(path.join(dir, 'runs'));
  const run = new RunSupervisor(processOptions).start({
    stage: 'comparisons',
    configFile,
    workspaceFolder: dir,
    registry,
    sampleFrom: { model, source: 'pets DPO #1' },
  });
  const outcome = await run.process.outcome;
  assert.equal(outcome.status, 'finished', outcome.error);
  const { pairs } = readQueue(path.join(dir, 'queue.jsonl'));
  assert.ok(pairs.length > 0);
  for (const p of pairs) assert.deepEqual([p.source, p.generation.model], ['pets DPO #1', model]);
});

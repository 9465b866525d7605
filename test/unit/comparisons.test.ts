import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import {
  givesReference,
  labelQueue,
  referenceAnnotator,
  referenceOverlap,
  ruleLabel,
  wordAnnotator,
} from '../../src/data/annotators';
import { ComparisonPair, labelPair, queueStatus, readQueue } from '../../src/data/queue';
import { CandidateOptions, generateCandidates } from '../../src/train/comparisons';
import { appendPreference, readPreferencePairs, readPreferences, undoPreference } from '../../src/data/preferences';
import { saveCheckpoint } from '../../src/model/checkpoint';
import { loadModel } from '../../src/train/model-state';
import { tempDir } from '../helpers/temp';

const dir = tempDir('comparisons');
const modelDir = path.join(dir, 'model');
const { config, params } = loadModel('tiny', 1, { n_layer: 1, n_embd: 16, n_head: 2, n_positions: 40 });
saveCheckpoint(modelDir, { config, params });

const promptsFile = path.join(dir, 'prompts.jsonl');
const conversation = [{ role: 'user', content: 'What does a dog eat?' }];
fs.writeFileSync(
  promptsFile,
  [
    { prompt: 'What does a cat eat?' },
    { prompt: conversation },
    { prompt: 'What does a cat eat?' },
    { prompt: '狗怎么叫？' },
  ]
    .map((r) => JSON.stringify(r))
    .join('\n'),
);

const options = (queue: string, extra: Partial<CandidateOptions> = {}): CandidateOptions => ({
  model: modelDir,
  prompts: promptsFile,
  queue,
  n: 3,
  maxNewTokens: 4,
  temperature: 1.5,
  provider: 'cpu',
  threads: 1,
  ...extra,
});

test('comparisons: queue generation stops, resumes without duplicates, and matches a run in one go', async () => {
  const queue = path.join(dir, 'queue.jsonl');
  const stop = new AbortController();
  const progress: number[] = [];
  const first = await generateCandidates(
    options(queue, {
      signal: stop.signal,
      onProgress: (p) => {
        progress.push(p.done);
        stop.abort();
      },
    }),
  );
  assert.deepEqual(progress, [1]);
  assert.equal(first.stopped, true);
  assert.equal(first.sampled, 1);

  const second = await generateCandidates(options(queue));
  assert.deepEqual([second.sampled, second.alreadyQueued, second.stopped], [2, 2, false]);
  const third = await generateCandidates(options(queue));
  assert.deepEqual([third.sampled, third.alreadyQueued, third.pairs], [0, 4, 0]);

  const lines = fs
    .readFileSync(queue, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ComparisonPair);
  assert.equal(new Set(lines.map((p) => p.pair_id)).size, lines.length);
  assert.deepEqual(
    new Set(lines.map((p) => JSON.stringify(p.prompt))),
    new Set(['"What does a cat eat?"', JSON.stringify(conversation), '"狗怎么叫？"']),
  );
  for (const p of lines) {
    assert.notEqual(p.response_a.trim(), p.response_b.trim());
    assert.match(p.candidate_ids.a, /^[0-9a-f]{12}-[0-2]$/);
    assert.equal(p.candidate_ids.a.split('-')[0], p.candidate_ids.b.split('-')[0]);
    assert.deepEqual(p.generation, {
      model: modelDir,
      seed: 0,
      n: 3,
      temperature: 1.5,
      top_k: 0,
      top_p: 1,
      max_new_tokens: 4,
    });
  }

  const inOneGo = path.join(dir, 'queue-one-go.jsonl');
  await generateCandidates(options(inOneGo));
  const ids = (file: string) =>
    readQueue(file)
      .pairs.map((p) => p.pair_id)
      .sort();
  assert.deepEqual(ids(inOneGo), ids(queue));
});

test('comparisons: identical responses are not paired', async () => {
  const queue = path.join(dir, 'greedy.jsonl');
  const summary = await generateCandidates(options(queue, { temperature: 0 }));
  assert.deepEqual([summary.sampled, summary.pairs], [3, 0]);
  assert.equal(fs.existsSync(queue), false);
});

test('comparisons: queueStatus finds the next unlabeled pair across labels and undos', async () => {
  const queue = path.join(dir, 'status-queue.jsonl');
  const prefs = path.join(dir, 'status-prefs.jsonl');
  await generateCandidates(options(queue));
  const { pairs } = readQueue(queue);
  assert.ok(pairs.length >= 3);
  assert.deepEqual(queueStatus(queue, prefs), { total: pairs.length, done: 0, next: pairs[0], errors: [] });

  await appendPreference(prefs, labelPair(pairs[0], 'b', { annotator: 'me' }));
  await appendPreference(prefs, labelPair(pairs[1], 'skip'));
  assert.deepEqual(queueStatus(queue, prefs).next, pairs[2]);
  await undoPreference(prefs, pairs[1].pair_id);
  assert.deepEqual([queueStatus(queue, prefs).done, queueStatus(queue, prefs).next], [1, pairs[1]]);

  const labeled = readPreferences(prefs).records[0];
  assert.ok('chosen' in labeled);
  assert.deepEqual(
    [labeled.chosen, labeled.rejected, labeled.annotator],
    [pairs[0].response_b, pairs[0].response_a, 'me'],
  );
  assert.deepEqual(labeled.candidate_ids, pairs[0].candidate_ids);

  const { counts } = await labelQueue(queue, prefs, wordAnnotator('the'));
  assert.equal(counts.a + counts.b + counts.tie, pairs.length - 1);
  const status = queueStatus(queue, prefs);
  assert.deepEqual([status.done, status.next], [pairs.length, undefined]);
  const chat = readPreferences(prefs).records.find((r) => Array.isArray(r.prompt));
  assert.ok(chat);
  assert.deepEqual(Object.keys(('chosen' in chat ? chat.chosen : chat.response_a)[0]), ['role', 'content']);
  assert.equal(readPreferencePairs(prefs).pairs.length, 1 + counts.a + counts.b);
});

test('comparisons: the demo rule prefers the word, then the shorter response, else a tie', () => {
  const pair = (a: string, b: string): ComparisonPair => ({
    pair_id: 'p',
    prompt: 'Q',
    response_a: a,
    response_b: b,
    candidate_ids: { a: 'h-0', b: 'h-1' },
    generation: {},
  });
  assert.equal(ruleLabel(pair(' A cat eats fish and more.', ' Grass.'), 'FISH').label, 'a');
  assert.equal(ruleLabel(pair(' Grass.', ' Fish!'), 'fish').label, 'b');
  assert.equal(ruleLabel(pair(' fish, fish', ' fish'), 'fish').label, 'b');
  assert.equal(ruleLabel(pair(' Rock.', ' Sand. '), 'fish').label, 'tie');
  assert.equal(ruleLabel(pair(' Rock', ' Sand.'), 'fish').label, 'a');
});

test('comparisons: the reference annotator prefers the answer closer to the known one and skips unknown prompts', () => {
  const pair = (prompt: string, a: string, b: string): ComparisonPair => ({
    pair_id: 'p',
    prompt,
    response_a: a,
    response_b: b,
    candidate_ids: { a: 'h-0', b: 'h-1' },
    generation: {},
  });
  const references = new Map([
    ['What does a cat eat?', [' A cat eats fish.']],
    ['猫吃什么？', ['猫吃鱼。']],
  ]);
  const judge = referenceAnnotator(references).judge;
  assert.equal(judge(pair('What does a cat eat?', ' A dog eats grass.', ' a cat  eats FISH')).label, 'b');
  assert.equal(judge(pair('猫吃什么？', '猫吃鱼。', '狗吃草。')).label, 'a');
  assert.equal(judge(pair('What does a cat eat?', ' A cat eats grass.', ' A cat eats seeds.')).label, 'tie');
  assert.equal(judge(pair('Where does a cat live?', ' In a house.', ' On a farm.')).label, 'skip');
  assert.equal(givesReference(references, 'What does a cat eat?', ' a cat eats fish!'), true);
  assert.equal(givesReference(references, 'What does a cat eat?', ' A cat eats fish and meat.'), false);
  assert.equal(referenceOverlap(references, '猫吃什么？', '猫吃鱼。'), 1);
  assert.equal(referenceOverlap(references, 'What does a cat eat?', ' A cow eats grass.'), 0.5);
});

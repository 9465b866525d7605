/** The demo's example reward functions (media/demo/rewards.ts) on the demo's prompts, as a GRPO run calls them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { Rewards } from '../../src/train/rewards/reward-funcs';
import { tempDir } from '../helpers/temp';

test('the demo reward functions score right answers above wrong ones', async () => {
  const records = ['prompts.jsonl', 'eval.jsonl'].flatMap((file) =>
    fs
      .readFileSync(path.join(__dirname, '../../media/demo', file), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { prompt: string; answer: string }),
  );
  const rows = ['What sound does a dog make?', '狗怎么叫？'].map((prompt) => records.find((r) => r.prompt === prompt)!);
  assert.deepEqual(rows, [
    { prompt: 'What sound does a dog make?', answer: 'woof' },
    { prompt: '狗怎么叫？', answer: '汪汪叫' },
  ]);
  const rewards = await Rewards.create(
    [path.join(__dirname, '../../media/demo/rewards.ts')],
    [0.5, 1, 0.25, 0.5],
    tempDir('demo-rewards'),
  );
  const scores = await rewards.score({
    prompts: [rows[0].prompt, rows[0].prompt, rows[1].prompt, rows[1].prompt],
    completions: [' A dog says woof.', ' A dog says meow, meow and', '狗汪汪叫。', ' A dog says woof.'],
    completionIds: [[1, 2, 3, 4, 5], Array(30).fill(1), [1, 2, 3], [1, 2, 3, 4, 5]],
    columns: [rows[0], rows[0], rows[1], rows[1]].map(({ answer }) => ({ answer })),
    trainerState: {},
  });
  assert.deepEqual(scores.names, ['oneSentence', 'statesAnswer', 'concise', 'sameLanguage']);
  assert.deepEqual(Array.from(scores.perFunc[0]), [1, 0, 1, 1]);
  assert.deepEqual(Array.from(scores.perFunc[1]), [1, 0, 1, 0]);
  assert.deepEqual(Array.from(scores.perFunc[2]), [1, 0.125, 1, 1]);
  assert.deepEqual(Array.from(scores.perFunc[3]), [1, 1, 1, 0]);
  assert.equal(scores.logged['answers/accuracy'], 0.5);
});

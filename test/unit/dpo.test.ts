import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadCheckpoint } from '../../src/model/checkpoint';
import { RunEvent } from '../../src/protocol/runner';
import { Experiment, parseExperiment } from '../../src/experiment/config';
import { runDpo } from '../../src/train/dpo';
import { REFERENCE_LOGPS_FILE } from '../../src/train/dpo-reference';
import { markerPairs } from '../helpers/marker-pairs';
import { tempDir } from '../helpers/temp';

const dir = tempDir('dpo');

function experiment(dpo: Record<string, unknown>): Experiment {
  return parseExperiment(
    {
      seed: 1,
      model: 'tiny',
      model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
      runtime: { provider: 'cpu', threads: 1 },
      dpo: {
        data: path.join(dir, 'unused.jsonl'),
        per_device_train_batch_size: 8,
        learning_rate: 3e-3,
        warmup_steps: 3,
        logging_steps: 1,
        eval_steps: 1000,
        save_steps: 1000,
        eval_fraction: 0.25,
        ...dpo,
      },
    },
    'test',
  );
}

const rows = (run: string) =>
  fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
const lastEval = (run: string) =>
  rows(run)
    .filter((r) => 'eval_rewards/accuracies' in r)
    .pop()!;

const TRL_METRICS = [
  'loss',
  'grad_norm',
  'learning_rate',
  'rewards/chosen',
  'rewards/rejected',
  'rewards/margins',
  'rewards/accuracies',
  'logps/chosen',
  'logps/rejected',
  'logits/chosen',
  'logits/rejected',
];

test('DPO: learns a preference rule (held-out rewards/accuracies ≥ 0.9), and about 0.5 with the labels shuffled', async () => {
  const events: RunEvent[] = [];
  const learn = path.join(dir, 'rule');
  const { modelDir } = await runDpo({
    experiment: experiment({ max_steps: 30 }),
    outputDir: learn,
    pairs: markerPairs(160, 5),
    emit: (e) => events.push(e),
  });
  const learned = lastEval(learn);
  assert.ok(learned['eval_rewards/accuracies'] >= 0.9, JSON.stringify(learned));
  for (const key of TRL_METRICS) assert.ok(key in rows(learn)[0], key);
  for (const key of TRL_METRICS.slice(3)) assert.ok(`eval_${key}` in learned, `eval_${key}`);
  assert.equal(loadCheckpoint(modelDir).head, 'lm');
  const samples = events.filter((e) => e.type === 'samples');
  assert.deepEqual(
    samples.map((e) => e.step),
    [0, 30],
    'samples before and after training',
  );
  assert.ok(fs.existsSync(path.join(learn, REFERENCE_LOGPS_FILE)));

  const shuffled = path.join(dir, 'shuffled');
  await runDpo({
    experiment: experiment({ max_steps: 30 }),
    outputDir: shuffled,
    pairs: markerPairs(160, 5, true),
    emit: () => {},
  });
  const chance = lastEval(shuffled)['eval_rewards/accuracies'];
  assert.ok(chance >= 0.35 && chance <= 0.65, `shuffled labels: eval_rewards/accuracies ${chance}`);
});

test('DPO: pairs that teach nothing are left out and counted in a warning naming the file; over-long prompts keep their end', async () => {
  const file = path.join(dir, 'bad.jsonl');
  const good = markerPairs(6, 3);
  const lines = [
    ...good,
    { prompt: 'Same?', chosen: ' yes', rejected: ' yes' },
    { prompt: 'Empty?', chosen: ' yes', rejected: '' },
    { prompt: 'Blank?', chosen: '  ', rejected: ' no' },
    { prompt: 'word '.repeat(40), chosen: ' long', rejected: ' prompt' },
    { id: 'x', label: 'tie', prompt: 'Tie?', response_a: ' a', response_b: ' b' },
  ];
  fs.writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n'));
  const events: RunEvent[] = [];
  const run = path.join(dir, 'bad-run');
  await runDpo({
    experiment: experiment({ data: file, max_steps: 2, max_prompt_length: 8, eval_fraction: 0 }),
    outputDir: run,
    emit: (e) => events.push(e),
  });
  const messages = events.flatMap((e) => (e.type === 'log' ? [`${e.level}: ${e.message}`] : []));
  const has = (pattern: RegExp) =>
    assert.ok(
      messages.some((m) => pattern.test(m)),
      `${pattern}\n${messages.join('\n')}`,
    );
  has(
    /^warn: .*bad\.jsonl: 3 of 10 pairs left out: 1 with the same chosen and rejected response, 2 with an empty response/,
  );
  has(/^warn: .*bad\.jsonl: 1 prompts were longer than max_prompt_length \(8 tokens\) and keep their end/);
  has(/^info: .*bad\.jsonl: 1 comparison without a winner left out/);
  has(/DPO \(sigmoid, beta 0\.1\) on 7 pairs/);
});

test('DPO: a resumed run reads the reference log-probs from its run folder and ends where an uninterrupted run ends', async () => {
  const pairs = markerPairs(24, 8);
  const settings = { max_steps: 4, save_steps: 2, eval_fraction: 0, loss_type: 'ipo' };
  const whole = path.join(dir, 'whole');
  await runDpo({ experiment: experiment(settings), outputDir: whole, pairs, emit: () => {} });

  const cut = path.join(dir, 'cut');
  const controller = new AbortController();
  await runDpo({
    experiment: experiment(settings),
    outputDir: cut,
    pairs,
    emit: (e) => {
      if (e.type === 'checkpoint') controller.abort();
    },
    signal: controller.signal,
  });
  const events: RunEvent[] = [];
  await runDpo({
    experiment: experiment(settings),
    outputDir: cut,
    pairs,
    resumeFrom: path.join(cut, 'checkpoint-2'),
    emit: (e) => events.push(e),
  });
  assert.ok(
    events.some((e) => e.type === 'log' && /reference log-probs of 24 pairs read from/.test(e.message)),
    'the cached reference log-probs are reused',
  );
  const last = (run: string) => rows(run).pop()!;
  assert.equal(last(cut).step, 4);
  assert.ok(Math.abs(last(cut).loss - last(whole).loss) < 1e-5, `${last(cut).loss} vs ${last(whole).loss}`);
});

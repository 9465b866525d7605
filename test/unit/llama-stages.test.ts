import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { parseExperiment } from '../../src/experiment/config';
import { readQueue } from '../../src/data/queue';
import { loadCheckpoint } from '../../src/model/checkpoint';
import { generateCandidates } from '../../src/train/comparisons';
import { runPpo } from '../../src/train/ppo';
import { runRm } from '../../src/train/reward';
import { Scorer } from '../../src/train/scorer';
import { runSft } from '../../src/train/sft';
import { tempDir } from '../helpers/temp';

/** Every stage on one small tiny-llama, each stage starting from the model the one before saved. */
const dir = tempDir('llama-stages');

const animals = [
  ['cat', 'fish'],
  ['dog', 'meat'],
  ['cow', 'grass'],
  ['bird', 'seeds'],
];
const sftData = path.join(dir, 'sft.jsonl'),
  promptsFile = path.join(dir, 'prompts.jsonl');
fs.writeFileSync(
  sftData,
  animals
    .map(([a, food]) => JSON.stringify({ prompt: `What does a ${a} eat?`, completion: ` A ${a} eats ${food}.` }))
    .join('\n'),
);
fs.writeFileSync(promptsFile, animals.map(([a]) => JSON.stringify({ prompt: `What does a ${a} eat?` })).join('\n'));

const base = {
  seed: 3,
  model: 'tiny-llama',
  model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
  runtime: { provider: 'cpu', threads: 1 },
};
const losses = (run: string) =>
  fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => 'loss' in r)
    .map((r) => r.loss as number);
const architectures = (model: string) =>
  JSON.parse(fs.readFileSync(path.join(model, 'config.json'), 'utf8')).architectures;
let sftModel = '',
  rmModel = '';

test("SFT on tiny-llama: the loss falls as GPT-2's does, and the model saves as LlamaForCausalLM", async () => {
  const experiment = parseExperiment(
    {
      ...base,
      sft: {
        data: sftData,
        max_steps: 16,
        per_device_train_batch_size: 4,
        learning_rate: 2e-2,
        warmup_steps: 2,
        logging_steps: 1,
        eval_fraction: 0,
        save_steps: 100,
      },
    },
    'test',
  );
  const run = path.join(dir, 'sft');
  sftModel = (await runSft({ experiment, outputDir: run, emit: () => {} })).modelDir;
  const curve = losses(run);
  assert.ok(curve[15] < curve[0] * 0.5, `loss ${curve[0]} → ${curve[15]}`);
  assert.deepEqual(architectures(sftModel), ['LlamaForCausalLM']);
  const { config } = loadCheckpoint(sftModel);
  assert.deepEqual([config.modelType, config.nHead, config.nKvHead], ['llama', 2, 1]);
});

test('comparisons from the tiny-llama SFT model', async () => {
  const queue = path.join(dir, 'queue.jsonl');
  await generateCandidates({
    model: sftModel,
    prompts: promptsFile,
    queue,
    n: 2,
    maxNewTokens: 4,
    temperature: 1.5,
    provider: 'cpu',
    threads: 1,
  });
  assert.ok(readQueue(queue).pairs.length > 0);
});

test('a reward model on the tiny-llama trunk trains, saves as LlamaForSequenceClassification and scores', async () => {
  const pairs = animals.flatMap(([a, food]) =>
    animals.map(([, other]) => ({
      prompt: `What does a ${a} eat?`,
      chosen: ` ${food}.`,
      rejected: ` ${other} and ${other}.`,
    })),
  );
  const experiment = parseExperiment(
    {
      ...base,
      model: sftModel,
      rm: {
        data: path.join(dir, 'unused.jsonl'),
        max_steps: 6,
        per_device_train_batch_size: 8,
        learning_rate: 3e-3,
        eval_fraction: 0,
        save_steps: 100,
      },
    },
    'test',
  );
  rmModel = (await runRm({ experiment, outputDir: path.join(dir, 'rm'), pairs, emit: () => {} })).modelDir;
  assert.deepEqual(architectures(rmModel), ['LlamaForSequenceClassification']);
  assert.deepEqual(loadCheckpoint(rmModel).params.get('score.weight')?.shape, [1, 32]);
  const scorer = await Scorer.load(rmModel, { provider: 'cpu', threads: 1 });
  const scores = await scorer.scoreTexts([
    { prompt: 'What does a cat eat?', response: ' fish.' },
    { prompt: 'What does a cat eat?', response: ' grass and grass.' },
  ]);
  assert.ok(scores.every(Number.isFinite) && scores[0] !== scores[1]);
  await scorer.release();
});

test('PPO on tiny-llama with its reward model: a few iterations, policy and value saved in the Llama layout', async () => {
  const experiment = parseExperiment(
    {
      ...base,
      model: sftModel,
      ppo: {
        prompts: promptsFile,
        reward_model: rmModel,
        total_episodes: 16,
        per_device_train_batch_size: 8,
        num_mini_batches: 2,
        num_ppo_epochs: 1,
        learning_rate: 1e-3,
        response_length: 4,
        save_steps: 1000,
        sample_steps: 1000,
      },
    },
    'test',
  );
  const { modelDir } = await runPpo({ experiment, outputDir: path.join(dir, 'ppo'), emit: () => {} });
  assert.deepEqual(architectures(modelDir), ['LlamaForCausalLM']);
  assert.deepEqual(architectures(path.join(dir, 'ppo', 'value')), ['LlamaForSequenceClassification']);
});

/**
 * Where a model's tokenizer comes from: its folder's tokenizer.json when it has one, else its
 * architecture's. A model with an 8-token vocabulary cannot run with GPT-2's tokenizer, so every
 * stage that works on it below works with the folder's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { saveCheckpoint } from '../../src/model/checkpoint';
import { presetConfig, resizeConfig } from '../../src/model/config';
import { initParams } from '../../src/model/decoder';
import { readQueue } from '../../src/data/queue';
import { parseExperiment } from '../../src/experiment/config';
import { SampleRow } from '../../src/protocol/runner';
import { generateCandidates } from '../../src/train/comparisons';
import { loadModel } from '../../src/train/model-state';
import { Scorer } from '../../src/train/scorer';
import { runSft } from '../../src/train/sft';
import { Rng } from '../../src/util/rng';
import { writeTinyTokenizer } from '../helpers/tokenizers';
import { tempDir } from '../helpers/temp';

const scratch = tempDir('model-tokenizer');

/** A one-layer model over an 8-token vocabulary; with `tokenizer`, the tiny word-level tokenizer.json beside it. */
function savedModel(
  name: string,
  tokenizer: boolean,
  head: 'lm' | 'score' = 'lm',
  config: object = { eos_token: '</s>' },
): string {
  const model = resizeConfig(presetConfig('tiny'), { vocabSize: 8, nPositions: 32, nEmbd: 16, nLayer: 1, nHead: 2 });
  const params = initParams(model, new Rng(1));
  if (head === 'score') params.set('score.weight', { dtype: 'float32', shape: [1, 16], data: new Float32Array(16) });
  const dir = path.join(scratch, name);
  saveCheckpoint(dir, { config: model, params });
  if (tokenizer) writeTinyTokenizer(dir, config);
  return dir;
}

/** Text the tiny tokenizer can write: its words, separated by spaces. */
const WORDS = /^(\s*(hello|world|!|<unk>|<\/s>))*\s*$/;

test("a model folder's own tokenizer.json is its tokenizer; without one, its architecture's (GPT-2's, refused here)", async () => {
  const own = savedModel('own', true);
  const model = loadModel(own, 0);
  assert.equal(model.tokenizer.name, path.join(own, 'tokenizer.json'));
  assert.deepEqual(model.tokenizer.encode('hello world !'), [2, 3, 4]);
  assert.equal(model.tokenizer.eosId, 1);

  assert.throws(
    () => loadModel(savedModel('none', false), 0),
    /smaller than the 50257 tokens of the tokenizer \(gpt2\)/,
  );
  const scorer = await Scorer.load(savedModel('reward', true, 'score'), { provider: 'cpu', threads: 1 });
  assert.deepEqual((await scorer.scoreTexts([{ prompt: 'hello', response: ' world' }])).length, 1);
  await scorer.release();
});

/** A chat template that needs the variable `greeting` (as Qwen3's reads `enable_thinking`). */
const GREETING_TEMPLATE =
  "{% if greeting is not defined %}{{ raise_exception('no greeting') }}{% endif %}" +
  "{% for m in messages %}{{ greeting }} {{ m.content }}{% if m.role == 'assistant' %}</s>{% endif %} {% endfor %}";

test('SFT trains a model folder with its own tokenizer and chat template, and shows samples in its words', async () => {
  const data = path.join(scratch, 'sft.jsonl');
  const messages = [
    { role: 'user', content: 'hello' },
    { role: 'assistant', content: 'world !' },
  ];
  fs.writeFileSync(data, Array(8).fill(JSON.stringify({ messages })).join('\n'));
  const model = savedModel('sft-base', true, 'lm', { eos_token: '</s>', chat_template: GREETING_TEMPLATE });
  const exp = (kwargs?: object) =>
    parseExperiment(
      {
        seed: 1,
        model,
        runtime: { provider: 'cpu', threads: 1 },
        chat_template_kwargs: kwargs,
        sft: {
          data,
          max_steps: 2,
          per_device_train_batch_size: 4,
          learning_rate: 1e-2,
          logging_steps: 1,
          eval_fraction: 0,
          sample_prompts: ['hello'],
        },
      },
      'test',
    );
  await assert.rejects(
    runSft({ experiment: exp(), outputDir: path.join(scratch, 'sft-no-kwargs'), emit: () => {} }),
    /no greeting/,
  );
  const rows: SampleRow[] = [];
  await runSft({
    experiment: exp({ greeting: 'hello' }),
    outputDir: path.join(scratch, 'sft'),
    emit: (e) => e.type === 'samples' && rows.push(...e.rows),
  });
  assert.equal(rows.length, 2);
  for (const row of rows) assert.match(row.response, WORDS);
});

test('comparisons sample a model folder with its own tokenizer', async () => {
  const prompts = path.join(scratch, 'prompts.jsonl');
  fs.writeFileSync(
    prompts,
    [{ prompt: 'hello' }, { prompt: [{ role: 'user', content: 'hello world' }] }]
      .map((p) => JSON.stringify(p))
      .join('\n'),
  );
  const queue = path.join(scratch, 'queue.jsonl');
  await generateCandidates({
    model: savedModel('sampler', true),
    prompts,
    queue,
    n: 4,
    maxNewTokens: 6,
    temperature: 2,
    provider: 'cpu',
    threads: 1,
  });
  const { pairs } = readQueue(queue);
  assert.ok(pairs.length > 0);
  for (const pair of pairs)
    for (const response of [pair.response_a, pair.response_b]) assert.match(response as string, WORDS);
});

test('PPO refuses a reward model that reads another tokenizer than the policy, naming both', async () => {
  const { runPpo } = await import('../../src/train/ppo');
  const policy = savedModel('ppo-policy', true);
  const gpt2Reward = resizeConfig(presetConfig('tiny'), { nPositions: 32, nEmbd: 16, nLayer: 1, nHead: 2 });
  const params = initParams(gpt2Reward, new Rng(2));
  params.set('score.weight', { dtype: 'float32', shape: [1, 16], data: new Float32Array(16) });
  const reward = path.join(scratch, 'ppo-reward-gpt2');
  saveCheckpoint(reward, { config: gpt2Reward, params });
  const prompts = path.join(scratch, 'ppo-prompts.jsonl');
  fs.writeFileSync(prompts, `${JSON.stringify({ prompt: 'hello' })}\n`);
  const experiment = parseExperiment(
    {
      model: policy,
      runtime: { provider: 'cpu', threads: 1 },
      ppo: { prompts, reward_model: reward, total_episodes: 2 },
    },
    'test',
  );
  await assert.rejects(runPpo({ experiment, outputDir: path.join(scratch, 'ppo-run'), emit: () => {} }), (e: Error) =>
    e.message.startsWith(`the reward model ${reward} reads another tokenizer (gpt2) than the policy ${policy}`),
  );
});

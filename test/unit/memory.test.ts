/** Sizes that cannot fit in memory are refused by the field that sets them, before anything is allocated. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { ModelConfig, presetConfig } from '../../src/model/config';
import { paramShapes } from '../../src/model/decoder';
import { numel } from '../../src/model/safetensors';
import { parseExperiment } from '../../src/experiment/config';
import { checkBatchFits, parameterCount, trainingBytes } from '../../src/train/memory';
import { loadModel } from '../../src/train/model-state';
import { runPpo } from '../../src/train/ppo';
import { runRm } from '../../src/train/reward';
import { runSft } from '../../src/train/sft';
import { tempDir } from '../helpers/temp';

const dir = tempDir('memory');
const HUGE = 2 ** 20;

function experiment(sections: Record<string, unknown>) {
  return parseExperiment(
    {
      seed: 1,
      model: 'tiny',
      model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
      runtime: { provider: 'cpu', threads: 1 },
      ...sections,
    },
    'test',
  );
}

test('memory: the parameter count is the sum of every tensor, for any head and tying', () => {
  const untied: ModelConfig = { ...presetConfig('tiny'), tiedHead: false, nLayer: 3 };
  for (const cfg of [presetConfig('gpt2'), untied]) {
    assert.equal(
      parameterCount(cfg),
      [...paramShapes(cfg).values()].reduce((n, s) => n + numel(s), 0),
    );
  }
  assert.equal(parameterCount(presetConfig('gpt2')), 124_439_808, 'GPT-2 small, as Hugging Face counts it');
});

test('memory: a batch is refused exactly when its estimate exceeds the memory, naming the field and both sizes', () => {
  const cfg = presetConfig('tiny');
  const needed = trainingBytes(cfg, 8, 64);
  assert.ok(needed > 50257 * 8 * 64 * 4, 'the logits alone are counted');
  const check = (memory: number) => () => checkBatchFits('sft.per_device_train_batch_size', cfg, 8, 64, { memory });
  assert.doesNotThrow(check(needed));
  assert.throws(check(needed - 1));
  const estimate = `${(needed / 1e6).toPrecision(3)} MB`;
  assert.throws(check(2e8), (e: Error) =>
    e.message.startsWith(
      'sft.per_device_train_batch_size: training on batches ' +
        'of 8 sequences of up to 64 tokens (vocabulary 50257, n_embd 128, 2 layers) needs at least ' +
        `${estimate} of memory, more than this machine's 200 MB`,
    ),
  );
});

test('memory: every training stage refuses a batch that cannot fit before it allocates one', async () => {
  const sftData = path.join(dir, 'sft.jsonl');
  fs.writeFileSync(sftData, `${JSON.stringify({ prompt: 'What does a cat eat?', completion: ' Fish.' })}\n`.repeat(4));
  const fits = (field: string) => (e: Error) =>
    e.message.startsWith(`${field}: training on batches of `) && e.message.includes("more than this machine's");

  const sft = experiment({ sft: { data: sftData, per_device_train_batch_size: HUGE } });
  await assert.rejects(
    runSft({ experiment: sft, outputDir: path.join(dir, 'sft'), emit: () => {} }),
    fits('sft.per_device_train_batch_size'),
  );

  const rm = experiment({ rm: { data: sftData, per_device_train_batch_size: HUGE } });
  const pairs = [
    { prompt: 'Q', chosen: ' yes', rejected: ' no' },
    { prompt: 'Q', chosen: ' fine', rejected: ' bad' },
  ];
  await assert.rejects(
    runRm({ experiment: rm, outputDir: path.join(dir, 'rm'), pairs, emit: () => {} }),
    fits('rm.per_device_train_batch_size'),
  );

  const prompts = path.join(dir, 'prompts.jsonl');
  fs.writeFileSync(prompts, `${JSON.stringify({ prompt: 'What does a cat eat?' })}\n`);
  const ppo = experiment({ ppo: { prompts, per_device_train_batch_size: HUGE } });
  const reward = async (p: number[][]) => p.map(() => 0);
  await assert.rejects(
    runPpo({ experiment: ppo, outputDir: path.join(dir, 'ppo'), reward, emit: () => {} }),
    fits('ppo.per_device_train_batch_size'),
  );

  assert.deepEqual(fs.readdirSync(dir).sort(), ['prompts.jsonl', 'sft.jsonl'], 'no run folder was written');
});

test('memory: a model size whose weights cannot fit is refused by model_size before they are allocated', () => {
  assert.throws(
    () => loadModel('tiny', 0, { n_embd: 2 ** 31, n_head: 4 }),
    (e: Error) =>
      /^model_size: a model of [\d.e+]+ parameters \(n_embd 2147483648, 2 layers, context 128\) needs /.test(
        e.message,
      ) && e.message.includes("more than this machine's"),
  );
});

test('memory: the schema caps batch sizes in every stage', () => {
  assert.throws(
    () =>
      experiment({
        sft: { data: 'a', per_device_train_batch_size: 1e9 },
        rm: { data: 'b', per_device_train_batch_size: 1e9 },
        ppo: { prompts: 'c', per_device_train_batch_size: 1e9 },
      }),
    (e: Error) =>
      ['sft', 'rm', 'ppo'].every((stage) =>
        new RegExp(`^test: ${stage}\\.per_device_train_batch_size: must be at most 1048576`, 'm').test(e.message),
      ),
  );
  const largest = experiment({ sft: { data: 'a', per_device_train_batch_size: HUGE } });
  assert.equal(largest.sft?.per_device_train_batch_size, HUGE);
});

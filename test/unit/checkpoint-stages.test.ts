/**
 * What the stages save: every model folder with its source's tokenizer and generation files, in the
 * dtype it should have.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint';
import { presetConfig, resizeConfig } from '../../src/model/config';
import { initParams } from '../../src/model/decoder';
import { readSafetensors } from '../../src/model/safetensors';
import { parseExperiment } from '../../src/experiment/config';
import { runPpo } from '../../src/train/ppo';
import { runSft } from '../../src/train/sft';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../helpers/temp';

const dir = tempDir('checkpoint-stages');

/** GPT-2's, as its Hub folder has them. */
const COMPANIONS = {
  'generation_config.json': JSON.stringify({ bos_token_id: 50256, eos_token_id: [50256] }),
  'special_tokens_map.json': JSON.stringify({
    bos_token: '<|endoftext|>',
    eos_token: '<|endoftext|>',
    unk_token: '<|endoftext|>',
  }),
};

/** A small GPT-2 stored in bfloat16, with its tokenizer and generation files beside it. */
function sourceModel(): string {
  const config = resizeConfig(presetConfig('tiny'), { nLayer: 1, nEmbd: 32, nHead: 2, nPositions: 32 });
  const source = path.join(dir, 'source');
  saveCheckpoint(source, { config, params: initParams(config, new Rng(1)), dtype: 'bfloat16' });
  for (const [file, text] of Object.entries(COMPANIONS)) fs.writeFileSync(path.join(source, file), text);
  return source;
}

/** The model folder has the source's files, config.json names `dtype`, and the weights are stored as `stored`. */
function assertModelFolder(folder: string, dtype: string, stored: string): void {
  for (const [file, text] of Object.entries(COMPANIONS))
    assert.equal(fs.readFileSync(path.join(folder, file), 'utf8'), text, `${folder}: ${file}`);
  assert.equal(JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8')).torch_dtype, dtype, folder);
  assert.deepEqual(
    new Set(readSafetensors(path.join(folder, 'model.safetensors')).stored.values()),
    new Set([stored]),
    folder,
  );
  assert.equal(loadCheckpoint(folder).dtype, dtype);
}

const base = (model: string, torchDtype = 'auto') => ({
  seed: 2,
  model,
  torch_dtype: torchDtype,
  runtime: { provider: 'cpu', threads: 1 },
});

test("SFT then PPO: model/, checkpoint-N/ and PPO's policy/ and value/ carry the tokenizer files; finished models take the dtype", async () => {
  const data = path.join(dir, 'sft.jsonl');
  const prompts = path.join(dir, 'prompts.jsonl');
  fs.writeFileSync(
    data,
    ['cat', 'dog', 'cow', 'bird']
      .map((a) => JSON.stringify({ prompt: `What does a ${a} eat?`, completion: ' Food.' }))
      .join('\n'),
  );
  fs.writeFileSync(prompts, ['cat', 'dog'].map((a) => JSON.stringify({ prompt: `What does a ${a} eat?` })).join('\n'));

  // SFT from a bfloat16 model, torch_dtype auto: the finished model is bfloat16, the checkpoint float32 on disk.
  const sftExperiment = {
    ...base(sourceModel()),
    sft: { data, max_steps: 4, save_steps: 2, per_device_train_batch_size: 2, eval_fraction: 0, logging_steps: 2 },
  };
  const sft = await runSft({
    experiment: parseExperiment(sftExperiment, 'test'),
    outputDir: path.join(dir, 'sft'),
    emit: () => {},
  });
  assertModelFolder(sft.modelDir, 'bfloat16', 'BF16');
  assertModelFolder(path.join(dir, 'sft', 'checkpoint-2'), 'bfloat16', 'F32');

  // PPO from that model with torch_dtype float16: both models and both checkpoint folders keep the files.
  const ppoSettings = {
    prompts,
    total_episodes: 8,
    per_device_train_batch_size: 4,
    num_ppo_epochs: 1,
    response_length: 3,
    save_steps: 1,
    sample_steps: 1000,
  };
  const ppoExperiment = parseExperiment({ ...base(sft.modelDir, 'float16'), ppo: ppoSettings }, 'test');
  const reward = async (_: number[][], responses: number[][]) => responses.map((r) => r.length / 3);
  const ppo = await runPpo({ experiment: ppoExperiment, outputDir: path.join(dir, 'ppo'), reward, emit: () => {} });
  assertModelFolder(ppo.modelDir, 'float16', 'F16');
  assertModelFolder(path.join(dir, 'ppo', 'value'), 'float16', 'F16');
  for (const model of ['policy', 'value'])
    assertModelFolder(path.join(dir, 'ppo', 'checkpoint-1', model), 'float16', 'F32');
});

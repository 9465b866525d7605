/** Where a stage gets its model: what a model spec that is not a usable model folder is told. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint';
import { presetConfig, resizeConfig } from '../../src/model/config';
import { initParams } from '../../src/model/decoder';
import { loadModel } from '../../src/train/model-state';
import { Scorer } from '../../src/train/scorer';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../helpers/temp';

const scratch = tempDir('model-loading');

/** A small model with the given vocabulary, saved as a checkpoint; a score head makes it a reward model. */
function savedModel(name: string, vocabSize: number, head: 'lm' | 'score' = 'lm'): string {
  const config = resizeConfig(presetConfig('tiny'), { vocabSize, nPositions: 8, nEmbd: 8, nLayer: 1, nHead: 2 });
  const params = initParams(config, new Rng(1));
  if (head === 'score') params.set('score.weight', { dtype: 'float32', shape: [1, 8], data: new Float32Array(8) });
  const dir = path.join(scratch, name);
  saveCheckpoint(dir, { config, params });
  return dir;
}

test("loading: a model whose vocab_size is smaller than the tokenizer's is refused, naming both sizes", async () => {
  const small = savedModel('small-vocab', 1000);
  const configFile = path.join(small, 'config.json');
  const refusal = (e: Error) =>
    e.message.startsWith(`${configFile}: vocab_size 1000 is smaller than the 50257 tokens of the tokenizer (gpt2)`);
  assert.throws(() => loadModel(small, 0), refusal);
  assert.equal(loadCheckpoint(small).config.vocabSize, 1000, 'without a tokenizer to match, the checkpoint reads');

  const reward = savedModel('small-vocab-reward', 1000, 'score');
  await assert.rejects(Scorer.load(reward, { provider: 'cpu', threads: 1 }), (e: Error) =>
    e.message.includes('vocab_size 1000 is smaller than the 50257 tokens'),
  );

  const padded = savedModel('padded-vocab', 50304);
  assert.equal(loadModel(padded, 0).config.vocabSize, 50304, "a vocabulary padded past the tokenizer's is fine");
});

test('loading: a model name that is neither a preset nor a folder lists the presets', () => {
  const missing = path.join(scratch, 'gpt3');
  assert.throws(
    () => loadModel(missing, 0),
    (e: Error) =>
      e.message ===
      `model "${missing}" is neither a preset (tiny, gpt2, gpt2-medium, tiny-llama, smollm2-135m, smollm2-360m, qwen2.5-0.5b, qwen3-0.6b, llama-3.2-1b) nor a checkpoint folder`,
  );
});

test('loading: a model path that is a file says so', () => {
  const file = path.join(scratch, 'model.safetensors');
  fs.writeFileSync(file, 'not a folder');
  assert.throws(
    () => loadModel(file, 0),
    (e: Error) => e.message.startsWith(`${file} is a file, not a model folder`),
  );
});

test("loading: a folder's model knows its folder, its dtype and the eos ids that end its generations", () => {
  const dir = savedModel('with-generation-config', 50257);
  saveCheckpoint(dir, { ...loadCheckpoint(dir), dtype: 'bfloat16' });
  fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [7, 50256] }));
  const model = loadModel(dir, 0);
  assert.equal(model.source, dir);
  assert.equal(model.dtype, 'bfloat16');
  assert.deepEqual(
    model.tokenizer.stopIds.slice().sort((a, b) => a - b),
    [7, 50256],
  );
  fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 7 }));
  assert.deepEqual(
    loadModel(dir, 0)
      .tokenizer.stopIds.slice()
      .sort((a, b) => a - b),
    [7, 50256],
    "the tokenizer's EOS ends a generation too",
  );

  const preset = loadModel('tiny', 0, { n_layer: 1, n_embd: 8, n_head: 2, n_positions: 8 });
  assert.equal(preset.source, undefined);
  assert.equal(preset.dtype, 'float32');
  assert.deepEqual(preset.tokenizer.stopIds, [50256]);
});

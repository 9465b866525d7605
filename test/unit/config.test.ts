/** The experiment config file: how it is read, and what the schema refuses, by field. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { experimentName } from '../../src/runner/supervisor';
import { ConfigError, loadExperiment, parseExperiment } from '../../src/experiment/config';
import { tempDir } from '../helpers/temp';

const dir = tempDir('config');

test('config: a file that starts with a UTF-8 byte order mark reads as one without', () => {
  const file = path.join(dir, 'bom.rlhf.json');
  fs.writeFileSync(file, `\uFEFF${JSON.stringify({ name: 'bom', sft: { data: 'sft.jsonl' } })}`);
  assert.equal(fs.readFileSync(file)[0], 0xef, 'the file holds the BOM bytes');
  const experiment = loadExperiment(file, dir);
  assert.equal(experiment.name, 'bom');
  assert.equal(experiment.sft?.data, path.join(dir, 'sft.jsonl'));
  assert.equal(experimentName(file), 'bom', 'the host names the run from the file too');

  fs.writeFileSync(file, Buffer.from([0x7b, 0xff, 0x7d]));
  assert.throws(
    () => loadExperiment(file, dir),
    (e: Error) => e instanceof ConfigError && e.message === `${file}: not UTF-8 text`,
  );
});

test('config: eval_fraction must leave data to train on, in every stage that has one', () => {
  const parse = (evalFraction: number) => () =>
    parseExperiment(
      {
        sft: { data: 'sft.jsonl', eval_fraction: evalFraction },
        rm: { data: 'prefs.jsonl', eval_fraction: evalFraction },
      },
      'x.rlhf.json',
    );
  assert.throws(parse(1), (e: Error) =>
    ['sft', 'rm'].every((stage) =>
      new RegExp(`^x\\.rlhf\\.json: ${stage}\\.eval_fraction: must be below 1`, 'm').test(e.message),
    ),
  );
  assert.equal(parse(0.99)().sft?.eval_fraction, 0.99);
  assert.equal(parse(0)().rm?.eval_fraction, 0);
});

test('config: Hub repo ids in model fields stay ids, unless a folder of that name is beside the config; model_revision joins "model"', () => {
  const file = path.join(dir, 'hub.rlhf.json');
  const write = (json: object) => fs.writeFileSync(file, JSON.stringify(json));
  const hubModels = {
    model: 'HuggingFaceTB/SmolLM2-135M',
    comparisons: { prompts: 'p.jsonl', model: 'org/sampler@v2' },
    rm: { data: 'd.jsonl', model: 'org/backbone' },
    ppo: { prompts: 'p.jsonl', sft_model: 'org/policy', reward_model: 'org/rm' },
  };
  write(hubModels);
  const exp = loadExperiment(file, dir);
  assert.deepEqual(
    [exp.model, exp.comparisons?.model, exp.rm?.model, exp.ppo?.sft_model, exp.ppo?.reward_model],
    ['HuggingFaceTB/SmolLM2-135M', 'org/sampler@v2', 'org/backbone', 'org/policy', 'org/rm'],
  );

  fs.mkdirSync(path.join(dir, 'org', 'rm'), { recursive: true });
  assert.equal(
    loadExperiment(file, dir).ppo?.reward_model,
    path.join(dir, 'org', 'rm'),
    'an existing folder is a folder',
  );

  write({ model: 'Qwen/Qwen3-0.6B', model_revision: 'refs/pr/3' });
  assert.equal(loadExperiment(file, dir).model, 'Qwen/Qwen3-0.6B@refs/pr/3');
  write({ model: 'tiny', model_revision: 'main' });
  assert.throws(
    () => loadExperiment(file, dir),
    (e: Error) =>
      e instanceof ConfigError &&
      e.message ===
        `${file}: model_revision: applies to a Hub repo id in "model" ("org/name", without "@revision"), but "model" is "tiny"`,
  );
});

test('config: data fields take Hub datasets as they are, a dataset folder with its query, and a columns mapping', () => {
  const file = path.join(dir, 'data.rlhf.json');
  const write = (config: object) => fs.writeFileSync(file, JSON.stringify(config));
  write({
    sft: { data: 'instruction-data.json', columns: { prompt: 'question', completion: 'answer' } },
    rm: { data: 'hf://datasets/trl-lib/ultrafeedback_binarized?split=test&revision=main' },
    ppo: { prompts: 'my-dataset?config=en&split=train' },
  });
  const exp = loadExperiment(file, dir);
  assert.equal(exp.sft?.data, path.join(dir, 'instruction-data.json'));
  assert.deepEqual(exp.sft?.columns, { prompt: 'question', completion: 'answer' });
  assert.equal(exp.rm?.data, 'hf://datasets/trl-lib/ultrafeedback_binarized?split=test&revision=main');
  assert.equal(exp.ppo?.prompts, `${path.join(dir, 'my-dataset')}?config=en&split=train`);

  write({ sft: { data: 'sft.jsonl?splt=train' } });
  assert.throws(() => loadExperiment(file, dir), /sft\.data: sft\.jsonl\?splt=train: unknown "splt" in the query/);
  write({ rm: { data: '../outside/?split=train' } });
  assert.throws(() => loadExperiment(file, dir), /rm\.data/);
});

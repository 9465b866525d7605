/**
 * Stages reading data in other formats, end to end: SFT through the CLI on an Alpaca JSON array
 * (the tutorials' instruction-data.json), and the reward model on a Parquet dataset served by a
 * local fake Hub, downloaded into the Hugging Face cache first; the Hub's Parquet conversion
 * branch and offline use of the cache.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadCheckpoint } from '../../src/model/checkpoint';
import { resolveDataSpec } from '../../src/hub/datasets';
import { hubSettings } from '../../src/hub/settings';
import { loadPreferencePairs } from '../../src/data/formats/stage-data';
import { FakeHub, commitOf } from '../helpers/fake-hub';
import { cli } from '../helpers/processes';
import { tempDir } from '../helpers/temp';

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'data');
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name));
const workspace = tempDir('data-stages');
let hub: FakeHub;
before(async () => {
  hub = await FakeHub.start({
    'test-org/ultrafeedback': {
      type: 'dataset',
      files: {
        'README.md': Buffer.from('---\nlicense: mit\n---\n'),
        'data/train-00000-of-00001.parquet': fixture('preferences-train.parquet'),
        'data/test-00000-of-00001.parquet': fixture('preferences-test.parquet'),
      },
    },
    'test-org/raw-json': {
      type: 'dataset',
      files: { 'README.md': Buffer.from('# raw\n'), 'raw/pairs.txt': Buffer.from('not a data file') },
      branches: { 'refs/convert/parquet': { 'default/train/0000.parquet': fixture('preferences-test.parquet') } },
    },
  });
});
after(async () => {
  await hub.close();
});

/** A tiny fresh GPT-2, small enough to train in a moment. */
const TINY = {
  model: 'tiny',
  model_size: { n_layer: 1, n_embd: 16, n_head: 2 },
  runtime: { provider: 'cpu', threads: 1 },
};
const SHORT = { max_steps: 2, per_device_train_batch_size: 2, logging_steps: 1, eval_fraction: 0, save_steps: 100 };

test('rlhf sft trains on an Alpaca JSON array and says how it read it', async () => {
  const dir = path.join(workspace, 'alpaca');
  fs.mkdirSync(dir);
  const data = Array.from({ length: 5 }, (_, i) => ({
    instruction: `Add ${i} and ${i}.`,
    input: i % 2 ? `${i} + ${i}` : '',
    output: `${2 * i}`,
  }));
  fs.writeFileSync(path.join(dir, 'instruction-data.json'), JSON.stringify(data, null, 4));
  const config = path.join(dir, 'alpaca.rlhf.json');
  fs.writeFileSync(
    config,
    JSON.stringify({ name: 'alpaca', ...TINY, sft: { data: 'instruction-data.json', ...SHORT } }),
  );
  const out = path.join(workspace, 'alpaca-run');
  const run = await cli(workspace, 'sft', config, '--out', out).exit;
  assert.equal(run.code, 0, run.output);
  const data_file = path.join(dir, 'instruction-data.json');
  assert.ok(run.output.includes(`read 5 records as Alpaca instruction data from ${data_file}`), run.output);
  assert.equal(loadCheckpoint(path.join(out, 'model')).trainerState?.step, 2);

  // A record without its output stops the run before it trains, naming file, line and field.
  fs.writeFileSync(
    path.join(dir, 'instruction-data.json'),
    JSON.stringify([...data, { instruction: 'Add 9 and 9.', input: '' }], null, 4),
  );
  const bad = await cli(workspace, 'sft', config, '--out', path.join(workspace, 'alpaca-bad')).exit;
  assert.notEqual(bad.code, 0);
  assert.ok(bad.output.includes(`${data_file}:27: field "output" is missing`), bad.output);
});

test('rlhf rm reads a Parquet dataset of the Hub, downloaded into the cache; the next run asks nothing', async () => {
  const dir = path.join(workspace, 'hub-rm');
  fs.mkdirSync(dir);
  const config = path.join(dir, 'rm.rlhf.json');
  const rm = { data: 'hf://datasets/test-org/ultrafeedback?split=train', ...SHORT };
  fs.writeFileSync(config, JSON.stringify({ name: 'hub-rm', ...TINY, rm }));
  const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: path.join(workspace, 'cache'), HF_HUB_OFFLINE: '' };
  Object.assign(process.env, env);
  const first = await cli(workspace, 'rm', config, '--out', path.join(workspace, 'rm-1')).exit;
  assert.equal(first.code, 0, first.output);
  const snapshot = path.join(
    env.HF_HUB_CACHE,
    'datasets--test-org--ultrafeedback',
    'snapshots',
    commitOf('test-org/ultrafeedback'),
  );
  assert.ok(first.output.includes(`1 file downloaded into ${snapshot}`), first.output);
  assert.ok(
    first.output.includes(`read 6 records as TRL conversational preference pairs from ${snapshot}?split=train`),
    first.output,
  );
  assert.ok(!hub.requests.some((r) => r.url.includes('test-00000')), 'only the split asked for is downloaded');
  assert.match(first.output, /test-org\/ultrafeedback: 1\.5 kB of 1\.5 kB \(100%\) · [\d.]+ [kMG]?B\/s/);

  const requests = hub.requests.length;
  const second = await cli(workspace, 'rm', config, '--out', path.join(workspace, 'rm-2')).exit;
  assert.equal(second.code, 0, second.output);
  assert.match(second.output, /hf:\/\/datasets\/test-org\/ultrafeedback\?split=train: from the Hugging Face cache/);
  assert.equal(hub.requests.length, requests);
});

test("a dataset without Parquet files of the split is read from the Hub's Parquet conversion; offline, from the cache", async () => {
  const settings = { ...hubSettings({}), endpoint: hub.url, cacheDir: path.join(workspace, 'convert-cache') };
  const spec = await resolveDataSpec('hf://datasets/test-org/raw-json', { settings });
  const commit = commitOf('test-org/raw-json', 'refs/convert/parquet');
  assert.equal(spec, path.join(settings.cacheDir, 'datasets--test-org--raw-json', 'snapshots', commit));
  assert.equal((await loadPreferencePairs(spec)).pairs.length, 3);

  const requests = hub.requests.length;
  const offline = { ...settings, offline: true };
  assert.equal(await resolveDataSpec('hf://datasets/test-org/raw-json', { settings: offline }), spec);
  assert.equal(hub.requests.length, requests);
  await assert.rejects(
    () => resolveDataSpec('hf://datasets/test-org/ultrafeedback', { settings: offline }),
    /HF_HUB_OFFLINE is set and hf:\/\/datasets\/test-org\/ultrafeedback is not in the Hugging Face cache/,
  );
  await assert.rejects(
    () => resolveDataSpec('hf://datasets/test-org/ultrafeedback?split=validation', { settings }),
    /no files of split "validation" of config "default" in a layout this reader knows \(main: no files of split "validation" in data\/ \(its splits: test, train\)/,
  );
  await assert.rejects(() => resolveDataSpec('hf://datasets/test-org/missing', { settings }), /was not found/);
});

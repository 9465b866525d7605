/**
 * Runs on a model from the Hub, end to end against a local fake Hub: the CLI and VS Code's Train
 * SFT download it with progress, train from the cached snapshot, and Stop ends a download.
 */
import { ui, vscode, workbench } from './vscode-stub';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadCheckpoint } from '../../src/model/checkpoint';
import { FakeHub, tinyModelFiles } from '../helpers/fake-hub';
import { cli } from '../helpers/processes';
import { trainingServices } from '../helpers/services';
import { tempDir } from '../helpers/temp';

const workspace = tempDir('hub-runs');
workbench.setFolders([workspace]);
let hub: FakeHub;
before(async () => {
  hub = await FakeHub.start({ 'test-org/tiny': { files: tinyModelFiles(path.join(workspace, 'source')) } });
});
after(async () => {
  await hub.close();
});

/** An SFT experiment on the Hub's test-org/tiny, in a folder of its own. */
function experiment(name: string): string {
  const dir = path.join(workspace, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'sft.jsonl'), JSON.stringify({ prompt: 'Hi?', completion: ' Hello.' }));
  const file = path.join(dir, `${name}.rlhf.json`);
  const sft = { data: 'sft.jsonl', max_steps: 2, per_device_train_batch_size: 1, logging_steps: 1, eval_fraction: 0 };
  fs.writeFileSync(
    file,
    JSON.stringify({ name, model: 'test-org/tiny', runtime: { provider: 'cpu', threads: 1 }, sft }),
  );
  return file;
}

const hubEnv = (cache: string) => ({
  HF_ENDPOINT: hub.url,
  HF_HUB_CACHE: path.join(workspace, cache),
  HF_HUB_OFFLINE: '',
});

test('rlhf sft on a Hub model downloads it with progress and trains; generate then uses the cache, with no request', async () => {
  Object.assign(process.env, hubEnv('cli-cache'));
  const out = path.join(workspace, 'cli-run');
  const sft = await cli(workspace, 'sft', experiment('cli'), '--out', out).exit;
  assert.equal(sft.code, 0, sft.output);
  assert.match(sft.output, /test-org\/tiny: 1\.6 MB of 1\.6 MB \(100%\) · [\d.]+ [kMG]?B\/s/);
  assert.match(sft.output, /test-org\/tiny: downloaded into .*models--test-org--tiny[/\\]snapshots[/\\][0-9a-f]{40}/);
  assert.equal(loadCheckpoint(path.join(out, 'model')).trainerState?.step, 2);

  const requests = hub.requests.length;
  const generated = await cli(
    workspace,
    'generate',
    '--model',
    'test-org/tiny',
    '--max-new-tokens',
    '2',
    '--provider',
    'cpu',
    'Hi',
  ).exit;
  assert.equal(generated.code, 0, generated.output);
  assert.match(generated.output, /test-org\/tiny: from the Hugging Face cache/);
  assert.equal(hub.requests.length, requests, 'the cached model needs no request');
});

test('Train SFT on a Hub model shows the download in its notification, then trains', async () => {
  const { startStage } = await import('../../src/commands/training');
  ui.reset();
  const run = (await startStage(
    (await trainingServices(hubEnv('vscode-cache'))).services,
    'sft',
    vscode.Uri.file(experiment('vscode')) as never,
  ))!;
  assert.equal((await run.process.outcome).status, 'finished');
  assert.ok(
    ui.progress.some((m) => /^downloading test-org\/tiny: 1\.6 MB of 1\.6 MB \(100%\)/.test(m)),
    ui.progress.join('\n'),
  );
  assert.ok(
    ui.progress.some((m) => m.startsWith('step 2/2')),
    'then the steps',
  );
});

test('Cancel on the notification stops a download; the part that arrived is kept for the next run', async () => {
  const { startStage } = await import('../../src/commands/training');
  const env = hubEnv('stopped-cache');
  ui.reset();
  void hub.stallAfter('model.safetensors', 300_000).then(() => setTimeout(() => ui.cancelProgress(), 200));
  const run = (await startStage(
    (await trainingServices(env)).services,
    'sft',
    vscode.Uri.file(experiment('stopped')) as never,
  ))!;
  const outcome = await run.process.outcome;
  assert.equal(outcome.status, 'failed');
  assert.equal(
    outcome.error,
    'stopped while downloading test-org/tiny; the next run that needs it resumes the download',
  );
  const blobs = path.join(env.HF_HUB_CACHE, 'models--test-org--tiny', 'blobs');
  assert.ok(fs.readdirSync(blobs).some((b) => b.endsWith('.incomplete')));
});

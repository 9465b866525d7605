/**
 * PPO killed (SIGKILL, as a crash or Force Stop) at random points while it saves a checkpoint every
 * iteration, through the rlhf CLI: every checkpoint-N it leaves holds both models whole, and the run
 * resumes; a checkpoint older versions left incomplete is skipped with a warning.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint';
import { incompleteCheckpoint } from '../../src/model/checkpoint-layout';
import { presetConfig, resizeConfig } from '../../src/model/config';
import { initParams } from '../../src/model/decoder';
import { findCheckpoints } from '../../src/runs/registry';
import { Rng } from '../../src/util/rng';
import { cli, exited, isRunning, trainingProcessOf } from '../helpers/processes';
import { tempDir } from '../helpers/temp';

const dir = tempDir('checkpoint-kill');
const out = path.join(dir, 'out');

// A model small enough that a checkpoint (two models with AdamW's moments) writes in milliseconds.
const size = { n_layer: 1, n_embd: 8, n_head: 2, n_positions: 32 };
const cfg = resizeConfig(presetConfig('tiny'), { nLayer: 1, nEmbd: 8, nHead: 2, nPositions: 32 });
saveCheckpoint(path.join(dir, 'rm'), { config: cfg, params: initParams(cfg, new Rng(1), 'score') });
fs.writeFileSync(
  path.join(dir, 'prompts.jsonl'),
  ['cat', 'dog'].map((a) => JSON.stringify({ prompt: `What does a ${a} eat?` })).join('\n'),
);
const config = path.join(dir, 'kill.rlhf.json');
fs.writeFileSync(
  config,
  JSON.stringify({
    name: 'kill',
    seed: 1,
    model: 'tiny',
    model_size: size,
    runtime: { provider: 'cpu', threads: 1 },
    ppo: {
      prompts: 'prompts.jsonl',
      reward_model: 'rm',
      total_episodes: 2000,
      per_device_train_batch_size: 2,
      num_mini_batches: 1,
      num_ppo_epochs: 1,
      response_length: 2,
      save_steps: 1,
      sample_steps: 1000,
    },
  }),
);

const PPO_MODELS = ['policy', 'value'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The step of a save under way in `out`: a ".partial" folder beside the checkpoints or inside one. */
function saveUnderWay(): number | undefined {
  for (const name of fs.existsSync(out) ? fs.readdirSync(out) : []) {
    const m = /^checkpoint-(\d+)(\.partial)?$/.exec(name);
    if (!m) continue;
    if (m[2] || fs.readdirSync(path.join(out, name)).some((entry) => entry.endsWith('.partial'))) return Number(m[1]);
  }
  return undefined;
}

/** Waits until a save of a step past `after` is under way, then `delay` ms; false if the process ended first. */
async function midSave(child: ChildProcess, after: number, delay: number): Promise<boolean> {
  for (;;) {
    if (!isRunning(child)) return false;
    if ((saveUnderWay() ?? 0) > after) break;
    await sleep(1);
  }
  await sleep(delay);
  return true;
}

function assertEveryCheckpointWhole(): number[] {
  const steps = fs
    .readdirSync(out)
    .flatMap((name) => /^checkpoint-(\d+)$/.exec(name)?.[1] ?? [])
    .map(Number);
  for (const step of steps) {
    const checkpoint = path.join(out, `checkpoint-${step}`);
    assert.equal(
      incompleteCheckpoint(checkpoint, PPO_MODELS),
      undefined,
      `${checkpoint} is incomplete: ${fs.readdirSync(checkpoint)}`,
    );
    for (const model of PPO_MODELS) assert.equal(loadCheckpoint(path.join(checkpoint, model)).trainerState?.step, step);
  }
  return steps;
}

test(
  'PPO killed at random points while saving checkpoints leaves each one whole, and resumes from the newest',
  { timeout: 180_000 },
  async () => {
    const rng = new Rng(11);
    let kills = 0;
    let cut = 0;
    for (let round = 0; round < 6 && kills < 4; round++) {
      const latest = findCheckpoints(out, 'ppo').latest;
      const run = cli(dir, 'ppo', config, '--out', out, ...(latest ? ['--resume', latest.path] : []));
      const at = (latest?.step ?? 0) + rng.int(3);
      if (await midSave(run.child, at, rng.int(12))) {
        process.kill(trainingProcessOf(run.child), 'SIGKILL');
        kills++;
      }
      const { output } = await run.exit;
      await exited(run.child);
      if (saveUnderWay() !== undefined) cut++; // the kill left a save unfinished
      assert.equal(run.child.signalCode, 'SIGKILL', `the run ended on its own:\n${output}`);
      assertEveryCheckpointWhole();
    }
    assert.equal(kills, 4);
    assert.ok(cut > 0, 'some kill cut a save short');

    const latest = findCheckpoints(out, 'ppo').latest!;
    const resumed = await cli(
      dir,
      'ppo',
      config,
      '--out',
      out,
      '--resume',
      latest.path,
      '--steps',
      String(latest.step + 2),
    ).exit;
    assert.equal(resumed.code, 0, resumed.output);
    assert.ok(resumed.output.includes('done: '), resumed.output);
    assertEveryCheckpointWhole();
    assert.equal(loadCheckpoint(path.join(out, 'model')).trainerState?.step, latest.step + 2);
  },
);

test(
  'a checkpoint older versions left incomplete (a model folder cut off) is skipped with a warning, and replaced',
  { timeout: 60_000 },
  async () => {
    const latest = findCheckpoints(out, 'ppo').latest!;
    // Older versions wrote checkpoint-N/policy, then checkpoint-N/value, each atomically: a kill between left this.
    const cutOff = path.join(out, `checkpoint-${latest.step + 1}`);
    fs.rmSync(cutOff, { recursive: true, force: true });
    fs.cpSync(path.join(latest.path, 'policy'), path.join(cutOff, 'policy'), { recursive: true });
    fs.mkdirSync(path.join(cutOff, 'value.partial'));
    fs.writeFileSync(path.join(cutOff, 'value.partial', 'config.json'), '{"model_ty');

    const resumed = await cli(dir, 'ppo', config, '--out', out, '--resume', cutOff, '--steps', String(latest.step + 2))
      .exit;
    assert.equal(resumed.code, 0, resumed.output);
    const warning = `warning: skipped ${cutOff}: incomplete, it has no value/config.json and model.safetensors, and value.partial is a cut-off save (resuming from ${path.basename(latest.path)})`;
    assert.ok(resumed.output.includes(warning), resumed.output);
    assert.equal(incompleteCheckpoint(cutOff, PPO_MODELS), undefined, 'the resumed run saved that step whole');
  },
);

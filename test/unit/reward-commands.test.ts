/**
 * Test Reward Functions and Debug Run… at the host ⇄ training-process boundary, for real: the actual
 * training entry (under tsx) runs a GRPO section's reward functions, or waits for a debugger.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { RunEvent } from '../../src/protocol/runner';
import { testRewards } from '../../src/runner/runner';
import { RunSupervisor } from '../../src/runner/supervisor';
import { RunRegistry } from '../../src/runs/registry';
import { tempDir } from '../helpers/temp';

const root = path.resolve(__dirname, '..', '..');
const dir = tempDir('reward-commands');
const processOptions = {
  entry: path.join(root, 'src', 'runner', 'train-process.ts'),
  execArgv: ['--import', 'tsx'],
  cwd: root,
};

fs.writeFileSync(
  path.join(dir, 'prompts.jsonl'),
  [
    { prompt: 'What does a cat eat?', answer: 'fish' },
    { prompt: 'What does a cow eat?', answer: 'grass' },
  ]
    .map((r) => JSON.stringify(r))
    .join('\n'),
);
fs.writeFileSync(
  path.join(dir, 'rewards.ts'),
  [
    'export const long = ({ completions }: { completions: string[] }) => completions.map((c) => c.length);',
    "export const grassy = ({ answer }: { answer: string[] }) => answer.map((a) => (a === 'grass' ? 1 : null));",
  ].join('\n'),
);
const config = path.join(dir, 'exp.rlhf.json');
fs.writeFileSync(
  config,
  JSON.stringify({
    name: 'rewards',
    model: 'tiny',
    model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
    runtime: { provider: 'cpu', threads: 1 },
    grpo: { prompts: 'prompts.jsonl', reward_funcs: ['rewards.ts'], reward_weights: [1, 10], max_completion_length: 4 },
  }),
);

test("Test Reward Functions: a fresh preset scores the prompts' answer column, each function in its column", async () => {
  const rows = await testRewards(
    { stage: 'grpo', configFile: config, workspaceFolder: dir, prompts: 5, seed: 1 },
    processOptions,
  );
  assert.equal(rows.length, 2);
  const cow = rows.find((r) => r.response === 'grass')!;
  assert.deepEqual(cow.rewards, { long: 5, grassy: 1 });
  assert.equal(cow.score, 15);
  assert.deepEqual(rows.find((r) => r.response === 'fish')!.rewards, { long: 4, grassy: null });
});

test('Test Reward Functions: a reward file outside the workspace is refused', async () => {
  const outside = tempDir('outside');
  const bad = path.join(dir, 'outside.rlhf.json');
  const exp = JSON.parse(fs.readFileSync(config, 'utf8'));
  exp.grpo.reward_funcs = [path.join(outside, 'r.ts')];
  fs.writeFileSync(bad, JSON.stringify(exp));
  await assert.rejects(
    testRewards({ stage: 'grpo', configFile: bad, workspaceFolder: dir, prompts: 1, seed: 1 }, processOptions),
    /grpo\.reward_funcs\.0/,
  );
});

test('Debug Run: the training process listens for the inspector and waits for a debugger before it trains', async () => {
  const supervisor = new RunSupervisor(processOptions);
  const registry = new RunRegistry(path.join(dir, 'runs'));
  const run = supervisor.start({ stage: 'grpo', configFile: config, workspaceFolder: dir, registry, debug: true });
  const events: RunEvent[] = [];
  const url = await new Promise<string>((resolve) =>
    run.process.on('event', (e) => {
      events.push(e);
      if (e.type === 'debugger') resolve(e.url);
    }),
  );
  assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+\//);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.deepEqual(
    events.filter((e) => e.type === 'progress' || e.type === 'metrics'),
    [],
    'it waits for the debugger',
  );
  run.process.kill();
  await run.process.outcome;
});

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { RunEvent } from '../../src/protocol/runner';
import { parseExperiment } from '../../src/experiment/config';
import { TINY_BASE, trainAnimalPolicy } from '../helpers/animal-policy';
import { runGroupRl } from '../../src/train/group-rl';
import { testRewardFunctions } from '../../src/train/reward-test';
import { tempDir } from '../helpers/temp';

/** A tiny SFT policy that names every food for every animal about evenly, trained once for the tests below. */
const dir = tempDir('grpo');
const base = TINY_BASE;
let sftModel = '';
before(async () => {
  sftModel = await trainAnimalPolicy(dir);
  fs.writeFileSync(
    path.join(dir, 'fish.ts'),
    [
      'export function mentionsFish({ completions }: { completions: string[] }): number[] {',
      "  return completions.map((c) => (c.includes('fish') ? 1 : 0));",
      '}',
    ].join('\n'),
  );
});

function groupExperiment(stage: 'grpo' | 'rloo', steps: number, overrides: Record<string, unknown> = {}) {
  return parseExperiment(
    {
      ...base,
      model: sftModel,
      [stage]: {
        prompts: path.join(dir, 'prompts.jsonl'),
        reward_funcs: [path.join(dir, 'fish.ts')],
        max_steps: steps,
        per_device_train_batch_size: 16,
        num_generations: 4,
        learning_rate: 3e-3,
        max_completion_length: 8,
        save_steps: 1000,
        sample_steps: 1000,
        ...overrides,
      },
    },
    'test',
  );
}

const metricsOf = (events: RunEvent[]) => events.flatMap((e) => (e.type === 'metrics' ? [e.values] : []));
const avg = (rows: Record<string, number>[], key: string) => rows.reduce((a, r) => a + r[key], 0) / rows.length;

test('GRPO end to end: a reward function in a TypeScript file is learned, and the KL to the reference is logged every step', async () => {
  const events: RunEvent[] = [];
  await runGroupRl({
    stage: 'grpo',
    experiment: groupExperiment('grpo', 20, { beta: 0.04 }),
    outputDir: path.join(dir, 'grpo'),
    emit: (e) => events.push(e),
  });
  const metrics = metricsOf(events);
  assert.equal(metrics.length, 20);
  const before = avg(metrics.slice(0, 3), 'reward'),
    after = avg(metrics.slice(-3), 'reward');
  assert.ok(before < 0.5, `the SFT policy already prefers fish (${before})`);
  assert.ok(after > before + 0.3, `mean reward ${before} → ${after}`);
  for (const m of metrics) {
    // k3 ≥ 0 at every token; how far it grows in 20 steps at lr 3e-3 depends on the samples drawn (TRL's
    // loss with beta is checked against PyTorch in grpo-math.test.ts).
    assert.ok(m.kl >= 0 && Number.isFinite(m.kl), `kl ${m.kl}`);
    assert.equal(m['rewards/mentionsFish/mean'], m.reward);
    for (const key of [
      'loss',
      'entropy',
      'reward_std',
      'frac_reward_zero_std',
      'completions/mean_length',
      'num_tokens',
    ])
      assert.ok(Number.isFinite(m[key]), key);
  }
  assert.ok(fs.existsSync(path.join(dir, 'grpo', 'model', 'model.safetensors')));
  const samples = events.find((e) => e.type === 'samples');
  assert.ok(samples?.type === 'samples' && samples.rows[0].rewards?.mentionsFish !== undefined);
});

test('RLOO end to end: the leave-one-out baseline learns the same reward', async () => {
  const events: RunEvent[] = [];
  await runGroupRl({
    stage: 'rloo',
    experiment: groupExperiment('rloo', 16),
    outputDir: path.join(dir, 'rloo'),
    emit: (e) => events.push(e),
  });
  const metrics = metricsOf(events);
  const before = avg(metrics.slice(0, 3), 'reward'),
    after = avg(metrics.slice(-3), 'reward');
  assert.ok(after > before + 0.25, `mean reward ${before} → ${after}`);
  assert.ok(
    metrics.every((m) => Math.abs(m.kl) < 1),
    'RLOO logs its KL (beta 0.05 by default)',
  );
});

test('a reward function that throws stops the run with its file and line', async () => {
  const file = path.join(dir, 'broken.ts');
  const source = [
    'export function broken({ completions }: { completions: string[] }) {',
    "  throw new Error('not ready');",
    '}',
  ];
  fs.writeFileSync(file, source.join('\n'));
  const error = await runGroupRl({
    stage: 'grpo',
    experiment: groupExperiment('grpo', 2, { reward_funcs: [file] }),
    outputDir: path.join(dir, 'broken'),
    emit: () => {},
  }).catch((e: Error) => e);
  assert.ok(error instanceof Error && error.message.startsWith(`${file}:2:`), String(error));
  assert.match(error.message, /broken threw on sample 0/);
});

test('GRPO: a stopped run resumes to the same metrics as an uninterrupted one', async () => {
  const experiment = () => groupExperiment('grpo', 4, { beta: 0.04, num_iterations: 2, save_steps: 1000 });
  const straight: RunEvent[] = [];
  await runGroupRl({
    stage: 'grpo',
    experiment: experiment(),
    outputDir: path.join(dir, 'straight'),
    emit: (e) => straight.push(e),
  });
  const stop = new AbortController();
  const first = await runGroupRl({
    stage: 'grpo',
    experiment: experiment(),
    outputDir: path.join(dir, 'resumed'),
    signal: stop.signal,
    emit: (e) => e.type === 'progress' && e.step === 2 && stop.abort(),
  });
  assert.equal(first.stopped, true);
  const resumed: RunEvent[] = [];
  await runGroupRl({
    stage: 'grpo',
    experiment: experiment(),
    outputDir: path.join(dir, 'resumed'),
    resumeFrom: first.modelDir,
    emit: (e) => resumed.push(e),
  });
  const want = metricsOf(straight).slice(2),
    got = metricsOf(resumed);
  assert.equal(got.length, 2);
  for (const [i, m] of got.entries())
    for (const key of ['reward', 'kl', 'loss', 'num_tokens'])
      assert.ok(
        Math.abs(m[key] - want[i][key]) <= 1e-4 * Math.max(1, Math.abs(want[i][key])),
        `step ${i + 3} ${key}: ${m[key]} vs ${want[i][key]}`,
      );
});

test('Test Reward Functions samples num_generations completions per prompt from the policy and scores them', async () => {
  const rows = await testRewardFunctions({
    experiment: groupExperiment('grpo', 1),
    stage: 'grpo',
    prompts: 2,
    seed: 3,
    log: () => {},
  });
  assert.equal(rows.length, 2 * 4);
  assert.equal(new Set(rows.map((r) => r.prompt)).size, 2);
  for (const r of rows) assert.equal(r.rewards?.mentionsFish, r.response.includes('fish') ? 1 : 0);
});

/**
 * Scenario 3: a reward model and PPO on tiny configs; the Training Charts panel shows the PPO
 * series growing while the run is live; Stop Run stops it with a checkpoint.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import type { Frame } from 'playwright-core';
import { eventually, runsOnDisk, writeExperiment } from './fixtures';
import { inWorkbench } from './workbench';

const ANIMALS = [
  'cat',
  'dog',
  'cow',
  'owl',
  'fox',
  'bee',
  'eel',
  'ant',
  'bat',
  'elk',
  'yak',
  'hen',
  'pig',
  'ram',
  'emu',
  'gnu',
];
const PREFERENCES = ANIMALS.map((animal) => ({
  prompt: `What does the ${animal} eat?`,
  chosen: ` The ${animal} eats plants.`,
  rejected: ' Rocks.',
}));

/** PPO batches of 4 prompts: each iteration logs a point; far more iterations than the test waits for. */
const PPO = {
  prompts: 'prompts.jsonl',
  total_episodes: 4000,
  per_device_train_batch_size: 4,
  num_mini_batches: 1,
  num_ppo_epochs: 1,
  response_length: 8,
  logging_steps: 1,
  save_steps: 1000,
  sample_steps: 1000,
};

test('reward model and PPO: the charts follow the live run, Stop Run leaves a checkpoint', { timeout: 300_000 }, (t) =>
  inWorkbench(
    t,
    (workspace) => {
      writeExperiment(workspace, 'ppo', {
        rm: {
          data: 'preferences.jsonl',
          max_steps: 10,
          per_device_train_batch_size: 4,
          logging_steps: 2,
          eval_steps: 10,
          save_steps: 10,
        },
        ppo: PPO,
      });
      fs.writeFileSync(
        path.join(workspace, 'ppo', 'preferences.jsonl'),
        PREFERENCES.map((p) => `${JSON.stringify(p)}\n`).join(''),
      );
    },
    async (wb) => {
      await wb.command('RLHF: Train Reward Model');
      // Trained on fewer pairs than a reward model needs: it finishes, and says so.
      await wb
        .notification(/ppo Reward Model #\d+ finished, but only \d+ labeled pairs with a winner/)
        .waitFor({ timeout: 120_000 });
      const rm = await eventually('the finished reward model run', () =>
        runsOnDisk(wb.workspace).find((r) => r.record.stage === 'rm' && r.record.status === 'finished'),
      );
      assert.ok(fs.existsSync(path.join(rm.dir, 'model')));

      await wb.command('RLHF: Run PPO');
      await wb.notification(/ppo PPO #\d+ starts, but the reward model .* is weak/).waitFor();
      await wb
        .notification(/ppo PPO #\d+/)
        .filter({ hasText: /step \d+\/1000/ })
        .waitFor({ timeout: 120_000 });
      const ppo = () => runsOnDisk(wb.workspace).find((r) => r.record.stage === 'ppo')!;

      await wb.commandAndPick('RLHF: Show Training Charts', 'PPO · running');
      const charts = await wb.webview('Training Charts');
      const before = await points(charts, 'objective/kl', 1);
      const after = await points(charts, 'objective/kl', before + 2);
      assert.equal(
        ppo().record.status,
        'running',
        `the chart grew from ${before} to ${after} points while the run was live`,
      );
      assert.ok(await points(charts, 'reward', 1), 'the reward chart has points too');

      await wb.commandAndPick('RLHF: Stop Run', 'PPO · running');
      const stopped = wb.notification(/ppo PPO #\d+ stopped at step \d+; a checkpoint was saved/);
      await stopped.waitFor({ timeout: 120_000 });
      const step = Number(/step (\d+)/.exec(await stopped.innerText())![1]);
      const run = await eventually('the PPO run recorded as stopped', () => ppo().record.status === 'stopped' && ppo());
      assert.equal(run.record.step, step);
      assert.ok(step < 1000, 'stopped before the end');
      assert.ok(fs.existsSync(path.join(run.dir, `checkpoint-${step}`)), `checkpoint-${step} was saved`);

      await wb.openRlhfViews();
      await wb.runRows('ppo PPO #1').filter({ hasText: 'stopped' }).waitFor();
    },
  ),
);

/** The chart's point count once it is at least `atLeast`. */
async function points(charts: Frame, chart: string, atLeast: number): Promise<number> {
  const element = charts.locator(`[data-testid="chart"][data-chart="${chart}"]`);
  await element.waitFor({ timeout: 60_000 });
  const handle = await charts.waitForFunction(
    ({ title, min }) => {
      const n = Number(
        document.querySelector(`[data-testid="chart"][data-chart="${title}"]`)?.getAttribute('data-points'),
      );
      return n >= min ? n : false;
    },
    { title: chart, min: atLeast },
    { timeout: 120_000 },
  );
  return (await handle.jsonValue()) as number;
}

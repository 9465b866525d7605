/**
 * Scenario: what the labels teach. Labels given in the sidebar train a reward model; the Labeling
 * view then names it with its held-out accuracy, the margins of the queue are scored in the
 * background, and the next label shows the model's margin beside it (never before it).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import type { Frame } from 'playwright-core';
import { readMargins } from '../../src/data/margins';
import { eventually, runsOnDisk, writeExperiment } from './fixtures';
import { inWorkbench } from './workbench';

const PROMPTS = ['cat', 'dog', 'cow', 'owl', 'fox', 'bee', 'eel', 'ant', 'bat', 'elk', 'yak', 'hen'].map(
  (animal) => `What does the ${animal} eat?`,
);

test('label, train a reward model, and see its margin beside the next label', { timeout: 300_000 }, (t) =>
  inWorkbench(
    t,
    (workspace) => {
      writeExperiment(workspace, 'teach', {
        comparisons: { prompts: 'questions.jsonl', num_candidates: 2, max_new_tokens: 8, temperature: 1 },
        rm: {
          data: 'preferences.jsonl',
          max_steps: 6,
          per_device_train_batch_size: 2,
          eval_fraction: 0.25,
          logging_steps: 2,
          eval_steps: 6,
          save_steps: 6,
        },
      });
      fs.writeFileSync(
        path.join(workspace, 'teach', 'questions.jsonl'),
        PROMPTS.map((prompt) => `${JSON.stringify({ prompt })}\n`).join(''),
      );
    },
    async (wb) => {
      await wb.command('RLHF: Generate Comparisons');
      await wb.clickNotification(/teach Comparisons #\d+ finished\./, 'Open Labeling');
      let view = await wb.webview('Labeling');
      await progress(view, 0);
      for (let i = 0; i < 8; i++) {
        await view.getByTestId('prompt').focus();
        await wb.page.keyboard.press(i % 2 === 0 ? '1' : '2');
        await progress(view, i + 1);
      }
      assert.equal(await view.getByTestId('model-name').isVisible(), false, 'no reward model yet');

      await wb.command('RLHF: Train Reward Model');
      await wb.notification(/teach Reward Model #\d+ finished/).waitFor({ timeout: 120_000 });
      const rm = await eventually('the finished reward model run', () =>
        runsOnDisk(wb.workspace).find((r) => r.record.stage === 'rm' && r.record.status === 'finished'),
      );
      await wb.command('RLHF: Open Labeling');
      view = await wb.webview('Labeling');
      await view.getByTestId('model-name').filter({ hasText: /teach/ }).waitFor({ timeout: 30_000 });
      await view
        .getByTestId('model-accuracy')
        .filter({ hasText: /% held-out accuracy/ })
        .waitFor();
      // The queue's margins are scored in the background, into the run's folder.
      const model = path.join(rm.dir, 'model');
      await eventually(
        'the queue scored',
        () => readMargins(path.join(rm.dir, 'margins.jsonl'), model).margins.size >= PROMPTS.length,
      );

      await view.getByTestId('prompt').focus();
      await wb.page.keyboard.press('1');
      await progress(view, 9);
      await view
        .getByTestId('model-latest')
        .filter({ hasText: /You chose A; the model prefers [AB] by \d+\.\d\d/ })
        .waitFor({ timeout: 30_000 });
    },
  ),
);

async function progress(view: Frame, done: number): Promise<void> {
  await view
    .getByTestId('progress')
    .filter({ hasText: `${done} / ${PROMPTS.length} labeled` })
    .waitFor({ timeout: 30_000 });
}

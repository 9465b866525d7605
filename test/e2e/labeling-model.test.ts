/**
 * Scenario: what the labels teach, round the loop. Labels given in the sidebar train a reward
 * model; the Labeling view then names it with its held-out accuracy, the margins of the queue are
 * scored in the background, and the next label shows the model's margin beside it (never before
 * it). A label turned against what the model learned shows in the Disagreements list, which opens
 * the pair to relabel (and undo puts the relabeled choice back). Once the queue is labeled, Generate
 * More Comparisons from a Run's Model samples new pairs from an SFT run's model, and they come up
 * in the queue tagged with its name.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import type { Frame } from 'playwright-core';
import { agreement, CONFIDENT_MARGIN, readMargins } from '../../src/data/margins';
import { readPreferences } from '../../src/data/preferences';
import { readQueue } from '../../src/data/queue';
import { eventually, runsOnDisk, tinySft, writeExperiment } from './fixtures';
import { inWorkbench, Workbench } from './workbench';

const PROMPTS = ['cat', 'dog', 'cow', 'owl', 'fox', 'bee', 'eel', 'ant', 'bat', 'elk', 'yak', 'hen'].map(
  (animal) => `What does the ${animal} eat?`,
);

test(
  'label, train a reward model, relabel where it disagrees, and label pairs sampled from a run',
  { timeout: 480_000 },
  (t) =>
    inWorkbench(
      t,
      (workspace) => {
        writeExperiment(workspace, 'teach', {
          sft: tinySft(4),
          comparisons: { prompts: 'questions.jsonl', num_candidates: 2, max_new_tokens: 8, temperature: 1 },
          rm: {
            data: 'preferences.jsonl',
            // Enough steps at a high enough rate that the model learns its training labels by a
            // confident margin: turning one of them round makes a disagreement.
            max_steps: 12,
            learning_rate: 1e-3,
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
        const queueFile = path.join(wb.workspace, 'teach', 'comparisons.jsonl');
        const preferencesFile = path.join(wb.workspace, 'teach', 'preferences.jsonl');
        await wb.command('RLHF: Generate Comparisons');
        await wb.clickNotification(/teach Comparisons #\d+ finished\./, 'Open Labeling');
        let view = await wb.settledWebview('Labeling');
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
        view = await wb.settledWebview('Labeling');
        await view.getByTestId('model-name').filter({ hasText: /teach/ }).waitFor({ timeout: 30_000 });
        await view
          .getByTestId('model-accuracy')
          .filter({ hasText: /% held-out accuracy/ })
          .waitFor();
        // The queue's margins are scored in the background, into the run's folder.
        const model = path.join(rm.dir, 'model');
        const margins = () => readMargins(path.join(rm.dir, 'margins.jsonl'), model).margins;
        await eventually('the queue scored', () => margins().size >= PROMPTS.length);

        await view.getByTestId('prompt').focus();
        await wb.page.keyboard.press('1');
        await progress(view, 9);
        await view
          .getByTestId('model-latest')
          .filter({ hasText: /You chose A; the model prefers [AB] by \d+\.\d\d/ })
          .waitFor({ timeout: 30_000 });

        // The label the model agrees with most, turned round from Find: a confident disagreement.
        const standing = () => new Map(readPreferences(preferencesFile).records.map((r) => [r.id!, r.label]));
        const [pairId, label, margin] = [...standing()]
          .flatMap(([id, l]) =>
            (l === 'a' || l === 'b') && margins().has(id) ? [[id, l, margins().get(id)!] as const] : [],
          )
          .sort((x, y) => agreement({ label: y[1], margin: y[2] }) - agreement({ label: x[1], margin: x[2] }))[0];
        assert.ok(
          agreement({ label, margin }) > CONFIDENT_MARGIN,
          `the model learned a label by more than ${CONFIDENT_MARGIN} (best: ${margin} for "${label}")`,
        );
        const other = label === 'a' ? 'b' : 'a';
        const pair = readQueue(queueFile).pairs.find((p) => p.pair_id === pairId)!;
        await view.getByTestId('prompt').focus();
        await wb.page.keyboard.press('/');
        await view.getByTestId('search-text').locator('input').fill(String(pair.prompt));
        await view.getByTestId(`found-${pairId}`).click({ timeout: 30_000 });
        await chooseOtherSide(wb, view);
        await eventually(`pair ${pairId} relabeled "${other}"`, () => standing().get(pairId) === other);

        // The Disagreements list has it; it opens the pair, and a new choice replaces the label.
        await view
          .getByTestId('disagreements-summary')
          .filter({ hasText: /Disagreements \([1-9]/ })
          .click();
        const entry = view.locator(`[data-testid="disagreement"][data-pair="${pairId}"]`);
        await entry.click({ timeout: 30_000 });
        await view
          .getByTestId('review-text')
          .filter({ hasText: /\(disagrees\)/ })
          .waitFor();
        await chooseOtherSide(wb, view);
        await eventually(`pair ${pairId} relabeled "${label}" from the list`, () => standing().get(pairId) === label);
        await entry.waitFor({ state: 'detached' });
        await progress(view, 9);

        // One undo puts the label before the relabel back.
        await view.getByTestId('prompt').focus();
        await wb.page.keyboard.press('u');
        await eventually(`pair ${pairId} back to "${other}"`, () => standing().get(pairId) === other);
        await entry.waitFor();
        await progress(view, 9);

        for (let done = 10; done <= PROMPTS.length; done++) {
          await view.getByTestId('prompt').focus();
          await wb.page.keyboard.press('1');
          await progress(view, done);
        }
        await view
          .getByTestId('notice')
          .filter({ hasText: `All ${PROMPTS.length} pairs are labeled.` })
          .waitFor();

        // More pairs, sampled from an SFT run's model, tagged with its name.
        await wb.command('RLHF: Train SFT');
        await wb.notification(/teach SFT #\d+ finished/).waitFor({ timeout: 120_000 });
        await wb.command('RLHF: Open Labeling');
        view = await wb.settledWebview('Labeling');
        await view.getByTestId('generate-from-run').click();
        await wb.pick('teach SFT #');
        await progress(view, PROMPTS.length, 2 * PROMPTS.length, 120_000);
        const sources = readQueue(queueFile).pairs.map((p) => p.source);
        assert.equal(sources.filter((s) => s === undefined).length, PROMPTS.length);
        const name = sources.find((s) => s !== undefined)!;
        assert.match(name, /^teach SFT #\d+ /, "the run's name");
        assert.equal(sources.filter((s) => s === name).length, PROMPTS.length);
        await view
          .getByTestId('pair-source')
          .filter({ hasText: `from ${name}` })
          .waitFor();
        await view.getByTestId('prompt').focus();
        await wb.page.keyboard.press('2');
        await progress(view, PROMPTS.length + 1, 2 * PROMPTS.length);
      },
    ),
);

async function progress(view: Frame, done: number, total = PROMPTS.length, timeout = 30_000): Promise<void> {
  await view
    .getByTestId('progress')
    .filter({ hasText: `${done} / ${total} labeled` })
    .waitFor({ timeout });
}

/** Chooses the response the opened pair's standing label did not choose. */
async function chooseOtherSide(wb: Workbench, view: Frame): Promise<void> {
  const heading = view.getByTestId('prompt-label').filter({ hasText: /labeled: [AB] better/ });
  // textContent: the heading is upper-cased by CSS, which innerText applies.
  const chosen = /labeled: ([AB]) better/.exec((await heading.textContent({ timeout: 30_000 })) ?? '')![1];
  await view.getByTestId('prompt').focus();
  await wb.page.keyboard.press(chosen === 'A' ? '2' : '1');
}

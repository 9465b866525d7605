/**
 * Scenario 2: labeling. Generate Comparisons fills a queue; the person labels 10 pairs in the
 * sidebar with the keyboard, takes one label back, reloads the window, and the preference file
 * holds exactly the labels given, each about the responses as they were shown.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import { readPreferences } from '../../src/data/preferences';
import { readQueue } from '../../src/data/queue';
import { writeExperiment } from './fixtures';
import type { Frame } from 'playwright-core';
import { inWorkbench } from './workbench';

const PROMPTS = ['cat', 'dog', 'cow', 'owl', 'fox', 'bee', 'eel', 'ant', 'bat', 'elk', 'yak', 'hen'].map(
  (animal) => `What does the ${animal} eat?`,
);

/** Keys in order: four labels, an undo of the fourth, then seven more labels; 10 stand. */
const KEYS = ['1', '2', '3', '4', 'u', '2', 's', '1', '1', '2', '3', '1'];
const LABEL_OF_KEY: Record<string, string> = { '1': 'left', '2': 'right', '3': 'tie', '4': 'both_bad', s: 'skip' };

/** What was on screen when a key was pressed. */
interface Shown {
  prompt: string;
  left: string;
  right: string;
}

/** Letters and digits only: Markdown rendering may change the rest of a sampled response. */
const letters = (text: unknown) => String(text).replace(/[^\p{L}\p{N}]+/gu, '');

test(
  'label 10 pairs with the keyboard, undo one, reload: the preference file holds those labels',
  { timeout: 300_000 },
  (t) =>
    inWorkbench(
      t,
      (workspace) => {
        writeExperiment(workspace, 'lab', {
          comparisons: { prompts: 'questions.jsonl', num_candidates: 2, max_new_tokens: 8, temperature: 1 },
        });
        fs.writeFileSync(
          path.join(workspace, 'lab', 'questions.jsonl'),
          PROMPTS.map((prompt) => `${JSON.stringify({ prompt })}\n`).join(''),
        );
      },
      async (wb) => {
        const queueFile = path.join(wb.workspace, 'lab', 'comparisons.jsonl');
        const preferencesFile = path.join(wb.workspace, 'lab', 'preferences.jsonl');

        await wb.command('RLHF: Generate Comparisons');
        await wb.clickNotification(/lab Comparisons #\d+ finished\./, 'Open Labeling');
        const pairs = readQueue(queueFile).pairs;
        assert.equal(pairs.length, PROMPTS.length, 'one pair per prompt');

        const view = await wb.webview('Labeling');
        await progress(view, 0, pairs.length);
        // At the default layout the pair and every choice are in sight, and the view does not scroll.
        const sight = await view.evaluate(() => {
          const root = document.documentElement;
          const ids = ['prompt', 'response-left', 'response-right', 'choice-left', 'choice-both_bad', 'choice-skip'];
          const outside = ids.filter((id) => {
            const r = document.querySelector(`[data-testid="${id}"]`)!.getBoundingClientRect();
            return r.height === 0 || r.top < 0 || r.bottom > innerHeight || r.right > innerWidth;
          });
          const scrolls = root.scrollHeight > innerHeight + 1 || root.scrollWidth > innerWidth + 1;
          return { outside, scrolls, size: `${innerWidth}×${innerHeight}` };
        });
        assert.deepEqual([sight.outside, sight.scrolls], [[], false], `in a ${sight.size} view`);
        const labels = new Map<string, { key: string; shown: Shown }>();
        const order: string[] = [];
        for (const key of KEYS) {
          if (key === 'u') {
            labels.delete(order.pop()!);
          } else {
            const shown = await shownPair(view);
            labels.set(shown.prompt, { key, shown });
            order.push(shown.prompt);
          }
          // Keys go to the page that has focus: the pair's prompt, as after a click on it.
          await view.getByTestId('prompt').focus();
          await wb.page.keyboard.press(key);
          await progress(view, labels.size, pairs.length);
        }
        assert.equal(labels.size, 10);

        await wb.reload();
        await wb.command('RLHF: Open Labeling');
        await progress(await wb.webview('Labeling'), 10, pairs.length);

        const { records, errors } = readPreferences(preferencesFile);
        assert.deepEqual(errors, []);
        assert.deepEqual(
          records.map((r) => r.prompt).sort(),
          [...labels.keys()].sort(),
          'one record per labeled pair, the undone label gone',
        );
        for (const record of records) {
          const { key, shown } = labels.get(record.prompt as string)!;
          const choice = LABEL_OF_KEY[key];
          if (choice === 'left' || choice === 'right') {
            assert.ok('chosen' in record, `${record.prompt}: a decided record`);
            const [winner, loser] = choice === 'left' ? [shown.left, shown.right] : [shown.right, shown.left];
            assert.equal(
              letters(record.chosen),
              letters(winner),
              `${record.prompt}: "chosen" is the response shown as ${choice === 'left' ? 'A' : 'B'}`,
            );
            assert.equal(letters(record.rejected), letters(loser), `${record.prompt}: "rejected" is the other one`);
            const pair = pairs.find((p) => p.prompt === record.prompt)!;
            assert.equal(record.label, record.chosen === pair.response_a ? 'a' : 'b');
          } else {
            assert.equal(record.label, choice, `${record.prompt}: labeled ${choice}`);
          }
        }
      },
    ),
);

async function progress(view: Frame, done: number, total: number): Promise<void> {
  await view
    .getByTestId('progress')
    .filter({ hasText: `${done} / ${total} labeled` })
    .waitFor({ timeout: 30_000 });
}

async function shownPair(view: Frame): Promise<Shown> {
  const text = (id: string) =>
    view
      .getByTestId(id)
      .innerText()
      .then((s) => s.trim());
  return { prompt: await text('prompt'), left: await text('response-left'), right: await text('response-right') };
}

/**
 * Scenario: the display language is Chinese (zh-cn). The palette lists the RLHF commands under
 * their Chinese titles, the RLHF sidebar's views and welcome text are Chinese, and the Labeling
 * view shows its pair with Chinese choices, labels by keyboard as in English, and saves the label.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import { readPreferences } from '../../src/data/preferences';
import { eventually, writeExperiment } from './fixtures';
import { inWorkbench } from './workbench';

const pair = (i: number) => ({
  pair_id: `p${i}`,
  prompt: `猫吃什么？${i}`,
  response_a: '猫吃鱼。',
  response_b: '猫吃石头。',
  candidate_ids: { a: `c${i}-0`, b: `c${i}-1` },
  generation: {},
});

test(
  'in Chinese: palette titles, sidebar and the Labeling view, labels saved as in English',
  { timeout: 240_000 },
  (t) =>
    inWorkbench(
      t,
      (workspace) => {
        writeExperiment(workspace, 'zh', {
          comparisons: { prompts: 'prompts.jsonl', queue: 'queue.jsonl', preferences: 'preferences.jsonl' },
        });
        const queue = [0, 1].map((i) => `${JSON.stringify(pair(i))}\n`).join('');
        fs.writeFileSync(path.join(workspace, 'zh', 'queue.jsonl'), queue);
      },
      async (wb) => {
        // The manifest's translations (package.nls.zh-cn.json): the views' names and the palette.
        await wb.activityTab('RLHF').click();
        await wb.page.locator('.part.sidebar .pane-header', { hasText: '运行' }).first().waitFor();
        await wb.command('RLHF: 打开标注');
        // The extension's messages (l10n/bundle.l10n.zh-cn.json), in the webview too.
        const view = await wb.webview('Labeling');
        await view.getByTestId('choice-left').filter({ hasText: 'A 更好' }).waitFor();
        await view.getByTestId('choice-tie').filter({ hasText: '一样好' }).waitFor();
        await view.getByTestId('prompt').filter({ hasText: '猫吃什么？' }).waitFor();
        // Either response may be shown on the left: "1" chooses the left one.
        const left = (await view.getByTestId('response-left').textContent())?.trim();
        await view.getByTestId('prompt').focus();
        await wb.page.keyboard.press('1');
        const preferences = path.join(wb.workspace, 'zh', 'preferences.jsonl');
        const [record] = await eventually('the label on disk', () => {
          const { records } = fs.existsSync(preferences) ? readPreferences(preferences) : { records: [] };
          return records.length === 1 && records;
        });
        assert.deepEqual([record.prompt, (record as { chosen?: string }).chosen], ['猫吃什么？0', left]);
      },
      { locale: 'zh-cn' },
    ),
);

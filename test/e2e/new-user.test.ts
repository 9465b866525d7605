/** Scenario 1: a new user starts from the demo and fine-tunes it, all from the UI. */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import { eventually, runsOnDisk, tinySft, TINY_MODEL_SIZE } from './fixtures';
import { inWorkbench } from './workbench';

const SFT_STEPS = 60;

test('New Experiment from the demo, Train SFT, the run finishes in the Runs view', { timeout: 300_000 }, (t) =>
  inWorkbench(
    t,
    () => {},
    async (wb) => {
      await wb.command('RLHF: New Experiment');
      await wb.pick('From the demo');
      await wb.answer(); // the suggested name, "demo"
      const ready = 'Experiment "demo" is ready.';
      await wb.notification(ready).waitFor();

      const dir = path.join(wb.workspace, 'demo');
      const configFile = path.join(dir, 'demo.rlhf.json');
      for (const file of ['demo.rlhf.json', 'sft.jsonl', 'prompts.jsonl'])
        assert.ok(fs.existsSync(path.join(dir, file)), `New Experiment wrote demo/${file}`);
      const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
      assert.equal(config.name, 'demo');
      await wb.page.locator('.tabs-container .tab', { hasText: 'demo.rlhf.json' }).waitFor();

      // The demo trains for minutes; the same experiment on a tiny model takes seconds.
      fs.writeFileSync(
        configFile,
        JSON.stringify(
          { ...config, model_size: TINY_MODEL_SIZE, sft: { ...(config.sft as object), ...tinySft(SFT_STEPS) } },
          null,
          2,
        ),
      );
      await wb.clickNotification(ready, 'Train SFT');

      await wb
        .notification(/demo SFT #\d+/)
        .filter({ hasText: new RegExp(`step \\d+/${SFT_STEPS}`) })
        .waitFor({ timeout: 120_000 });
      await wb.notification(/demo SFT #\d+ finished\./).waitFor({ timeout: 180_000 });

      const [run] = await eventually('the finished run on disk', () => {
        const runs = runsOnDisk(wb.workspace);
        return runs.length === 1 && runs[0].record.status === 'finished' && runs;
      });
      assert.equal(run.record.stage, 'sft');
      assert.equal(run.record.step, SFT_STEPS);
      assert.ok(fs.existsSync(path.join(run.dir, 'model')), 'the run saved its model');
      assert.ok(fs.statSync(path.join(run.dir, 'metrics.jsonl')).size > 0, 'the run logged metrics');

      await wb.openRlhfViews();
      await wb
        .runRows('demo')
        .filter({ hasText: 'finished' })
        .filter({ hasText: `step ${SFT_STEPS}/${SFT_STEPS}` })
        .waitFor();
      assert.equal(await wb.runRows().count(), 1);
    },
  ),
);

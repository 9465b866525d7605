/**
 * Scenario 4: bad input. A malformed preference file and a malformed experiment file each give an
 * error in the UI that names the problem, and leave the files and the earlier run as they were; a
 * config the schema refuses starts no run.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { test } from 'node:test';
import { eventually, MALFORMED_PREFERENCES, runsOnDisk, snapshot, tinySft, writeExperiment } from './fixtures';
import { inWorkbench, Workbench } from './workbench';

test('malformed preferences and config files give clear errors and overwrite nothing', { timeout: 300_000 }, (t) => {
  let configFile = '';
  return inWorkbench(
    t,
    (workspace) => {
      configFile = writeExperiment(workspace, 'exp', {
        sft: tinySft(10),
        rm: { data: 'preferences.jsonl', max_steps: 5, logging_steps: 1, eval_steps: 5, save_steps: 5 },
      });
      fs.writeFileSync(path.join(workspace, 'exp', 'preferences.jsonl'), MALFORMED_PREFERENCES);
    },
    async (wb) => {
      // A good run first: the bad input later must not touch it.
      await wb.command('RLHF: Train SFT');
      await wb.notification(/exp SFT #\d+ finished\./).waitFor({ timeout: 120_000 });
      const sft = await eventually('the SFT run recorded as finished', () =>
        runsOnDisk(wb.workspace).find((run) => run.record.status === 'finished'),
      );
      const sftFiles = snapshot(sft.dir);
      const workspaceFiles = snapshot(path.join(wb.workspace, 'exp'));
      await wb.command('Notifications: Clear All Notifications');

      await expectFailure(wb, 'RLHF: Train Reward Model', 'rm', /preferences\.jsonl:2: invalid JSON/);
      const rmError = await wb.notificationInCenter(/exp Reward Model #\d+ failed/);
      assert.match(await rmError.innerText(), /preferences\.jsonl:2: invalid JSON/);
      await wb.command('Notifications: Clear All Notifications');

      // A config that is not JSON, then one that is JSON with a value the schema refuses.
      const broken = [
        { text: fs.readFileSync(configFile, 'utf8').replace(/\}\s*$/, ''), problem: /exp\.rlhf\.json: not valid JSON/ },
        {
          text: fs.readFileSync(configFile, 'utf8').replace('"max_steps": 10', '"max_steps": -10'),
          problem: /exp\.rlhf\.json: sft\.max_steps: .*>0/,
        },
      ];
      for (const { text, problem } of broken) {
        fs.writeFileSync(configFile, text);
        const runs = runsOnDisk(wb.workspace).length;
        await wb.command('RLHF: Train SFT');
        // Checked before starting: the error names the problem, and no failed run is left behind.
        const configError = await wb.notificationInCenter(problem);
        assert.match(await configError.innerText(), /Not started: .*exp\.rlhf\.json/);
        assert.equal(runsOnDisk(wb.workspace).length, runs, 'no run for a config the schema refuses');
        assert.equal(
          fs.readFileSync(configFile, 'utf8'),
          text,
          'the extension left the broken config as the user wrote it',
        );
        await wb.command('Notifications: Clear All Notifications');
      }

      assert.deepEqual(snapshot(sft.dir), sftFiles, 'the earlier SFT run is untouched');
      const { 'exp.rlhf.json': _config, ...dataBefore } = workspaceFiles;
      const { 'exp.rlhf.json': _broken, ...dataAfter } = snapshot(path.join(wb.workspace, 'exp'));
      assert.deepEqual(dataAfter, dataBefore, 'the data files are untouched');
      assert.equal(fs.readFileSync(path.join(wb.workspace, 'exp', 'preferences.jsonl'), 'utf8'), MALFORMED_PREFERENCES);

      await wb.openRlhfViews();
      await wb.runRows().filter({ hasText: 'failed' }).first().waitFor();
      await wb.runRows().filter({ hasText: 'finished' }).first().waitFor();
      assert.equal(await wb.runRows().count(), 2);
    },
  );
});

/** Runs `command`: the run of `stage` it starts ends failed, with `problem` in its error, and saves no model. */
async function expectFailure(wb: Workbench, command: string, stage: string, problem: RegExp): Promise<void> {
  const known = new Set(runsOnDisk(wb.workspace).map((r) => r.record.id));
  await wb.command(command);
  const run = await eventually(`a new failed ${stage} run on disk`, () =>
    runsOnDisk(wb.workspace).find(
      (r) => !known.has(r.record.id) && r.record.stage === stage && r.record.status !== 'running',
    ),
  );
  assert.equal(run.record.status, 'failed');
  assert.match(run.record.error ?? '', problem);
  assert.ok(!fs.existsSync(path.join(run.dir, 'model')), 'a failed run saved no model');
}

/**
 * Runs inside an extension host (desktop VS Code through run.ts, or code-server in the end-to-end
 * tests): the extension's commands through the real API, checked against the runs and files they
 * leave on disk, in the workspace prepareIntegrationWorkspace writes. Prints `N passed, N failed`.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { eventually, MALFORMED_PREFERENCES, RunOnDisk, runsOnDisk, snapshot } from '../e2e/fixtures';

const EXTENSION_ID = 'rlhf-studio.rlhf-studio';
const TRAINING_TIMEOUT = 180_000;

const workspace = () => vscode.workspace.workspaceFolders![0].uri.fsPath;
const experiment = (name: string) => vscode.Uri.file(path.join(workspace(), name, `${name}.rlhf.json`));

/** The newest run of `stage` whose status is `status`, once there is one. */
function runOf(stage: string, status: string): Promise<RunOnDisk> {
  return eventually(
    `a ${status} ${stage} run`,
    () =>
      runsOnDisk(workspace())
        .reverse()
        .find((r) => r.record.stage === stage && r.record.status === status),
    TRAINING_TIMEOUT,
  );
}

/** What Train SFT returns: the live run, which Stop Run and Show Training Charts take as their argument. */
interface LiveRunRef {
  registry: unknown;
  record: { id: string };
}

const checks: [string, () => Promise<void>][] = [
  [
    'activates and registers every command it contributes',
    async () => {
      const extension = vscode.extensions.getExtension(EXTENSION_ID);
      assert.ok(extension, `${EXTENSION_ID} is not installed`);
      await extension.activate();
      const contributed = (extension.packageJSON.contributes.commands as { command: string }[]).map((c) => c.command);
      const registered = new Set(await vscode.commands.getCommands(true));
      assert.deepEqual(
        contributed.filter((c) => !registered.has(c)),
        [],
      );
    },
  ],

  [
    'Train SFT on a tiny config finishes and saves a model',
    async () => {
      await vscode.commands.executeCommand('rlhf.trainSft', experiment('exp'));
      const run = await runOf('sft', 'finished');
      assert.ok(fs.existsSync(path.join(run.dir, 'model')));
    },
  ],

  [
    'Train Reward Model on a malformed preference file fails naming the line, and changes no file',
    async () => {
      const before = snapshot(path.join(workspace(), 'exp'));
      await vscode.commands.executeCommand('rlhf.trainRewardModel', experiment('exp'));
      const run = await runOf('rm', 'failed');
      assert.match(run.record.error ?? '', /preferences\.jsonl:2: invalid JSON/);
      assert.deepEqual(snapshot(path.join(workspace(), 'exp')), before);
      assert.equal(fs.readFileSync(path.join(workspace(), 'exp', 'preferences.jsonl'), 'utf8'), MALFORMED_PREFERENCES);
    },
  ],

  [
    'Train SFT on an experiment file that is not JSON does not start, leaves no run, and leaves the file as it was',
    async () => {
      const before = fs.readFileSync(experiment('broken').fsPath, 'utf8');
      const runs = runsOnDisk(workspace()).length;
      const started = await vscode.commands.executeCommand('rlhf.trainSft', experiment('broken'));
      assert.equal(started, undefined, 'no run starts on a config that does not parse');
      assert.equal(runsOnDisk(workspace()).length, runs, 'no failed run left behind');
      assert.equal(fs.readFileSync(experiment('broken').fsPath, 'utf8'), before);
    },
  ],

  [
    'Stop Run stops a live run after its step, with a checkpoint, and Show Training Charts charts it',
    async () => {
      const live = await vscode.commands.executeCommand<LiveRunRef | undefined>('rlhf.trainSft', experiment('long'));
      assert.ok(live, 'Train SFT returned the run it started');
      await eventually(
        'the run to log its first metrics',
        () => runsOnDisk(workspace()).find((r) => r.record.id === live.record.id && r.record.step > 0),
        TRAINING_TIMEOUT,
      );
      await vscode.commands.executeCommand('rlhf.showCharts', live);
      await eventually(
        'a Training Charts tab',
        () =>
          vscode.window.tabGroups.all
            .flatMap((g) => g.tabs)
            .find((tab) => tab.input instanceof vscode.TabInputWebview && tab.input.viewType.endsWith('rlhf.charts')),
        10_000,
      );

      await vscode.commands.executeCommand('rlhf.stopRun', live);
      const stopped = await runOf('sft', 'stopped');
      assert.equal(stopped.record.id, live.record.id);
      assert.ok(
        fs.readdirSync(stopped.dir).some((f) => f === `checkpoint-${stopped.record.step}`),
        `checkpoint-${stopped.record.step} saved on stop`,
      );
    },
  ],
];

/** The entry @vscode/test-electron calls; a rejection fails the run. */
export async function run(): Promise<void> {
  let passed = 0;
  let failed = 0;
  for (const [name, check] of checks) {
    try {
      await check();
      passed++;
      console.log(`✔ ${name}`);
    } catch (e) {
      failed++;
      console.log(`✖ ${name}\n  ${(e as Error).stack ?? e}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  if (failed) throw new Error(`${failed} integration check${failed === 1 ? '' : 's'} failed`);
}

/**
 * Test Reward Functions (a GRPO or RLOO section's reward functions on a few sampled completions,
 * shown in an editor) and Debug Run… (a run whose training process waits for VS Code's debugger,
 * so breakpoints in reward functions stop there).
 */
import * as vscode from 'vscode';
import { loadExperiment } from '../experiment/config';
import { ExperimentStage, SampleRow } from '../protocol/runner';
import { testRewards } from '../runner/runner';
import { runtimeOverrides } from '../settings';
import { STAGE_INFO } from '../shared/stages';
import { Services } from '../services';
import { experimentWorkspace, pickExperiment, requireTrust } from './common';
import { startStage } from './training';

const REWARD_STAGES = ['grpo', 'rloo'] as const;
const why = () => vscode.l10n.t('it runs the reward functions and training code of this workspace');

export function registerRewardCommands(services: Services): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('rlhf.testRewardFunctions', (uri?: vscode.Uri) =>
      testRewardFunctions(services, uri),
    ),
    vscode.commands.registerCommand('rlhf.debugRun', (uri?: vscode.Uri) => debugRun(services, uri)),
  ];
}

async function testRewardFunctions(services: Services, uri?: vscode.Uri): Promise<void> {
  if (!(await requireTrust(vscode.l10n.t('Testing reward functions'), why()))) return;
  const config = await pickExperiment(uri);
  const workspaceFolder = config && (await experimentWorkspace(config));
  if (!config || !workspaceFolder) return;
  try {
    const exp = loadExperiment(config.fsPath, workspaceFolder);
    const stage = await pickStage(
      REWARD_STAGES.filter((st) => exp[st]),
      vscode.l10n.t('Section whose reward functions to test'),
    );
    if (!stage) return;
    const rows = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: vscode.l10n.t('Testing reward functions…'),
        cancellable: true,
      },
      (_progress, token) => {
        const cancel = new AbortController();
        token.onCancellationRequested(() => cancel.abort());
        const models = services.runs.registryFor(config)?.stageModels(config.fsPath);
        const seed = Math.floor(Math.random() * 2 ** 31);
        const command = { stage, configFile: config.fsPath, workspaceFolder, prompts: 4, seed, models };
        return testRewards({ ...command, runtime: runtimeOverrides(config) }, services.processOptions, cancel.signal);
      },
    );
    const doc = await vscode.workspace.openTextDocument({ content: rewardTable(rows), language: 'markdown' });
    await vscode.window.showTextDocument(doc);
  } catch (e) {
    services.log.error(`testing reward functions failed: ${(e as Error).message}`);
    const choice = await vscode.window.showErrorMessage(
      vscode.l10n.t('Reward functions: {0}', (e as Error).message),
      vscode.l10n.t('Show Log'),
    );
    if (choice) services.log.show();
  }
}

/** The completions and their rewards as a Markdown table: one column per function, then the weighted sum. */
export function rewardTable(rows: SampleRow[]): string {
  const names = Object.keys(rows[0]?.rewards ?? {});
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ↵ ');
  const value = (v: number | null | undefined) => (v === null || v === undefined ? '—' : String(+v.toFixed(4)));
  const lines = [
    `| # | prompt | completion | ${names.map(cell).join(' | ')} | reward |`,
    `|---|---|---|${names.map(() => '---|').join('')}---|`,
    ...rows.map(
      (r, i) =>
        `| ${i} | ${cell(r.prompt)} | ${cell(r.response)} | ${names.map((n) => value(r.rewards?.[n])).join(' | ')} | ${value(r.score)} |`,
    ),
  ];
  return `# Reward functions\n\n${lines.join('\n')}\n`;
}

/**
 * Starts a training stage with its process under Node's inspector, and attaches VS Code's Node
 * debugger once it listens (the process waits for it).
 */
async function debugRun(services: Services, uri?: vscode.Uri): Promise<void> {
  if (!(await requireTrust(vscode.l10n.t('Debugging a run'), why()))) return;
  const training = (Object.keys(STAGE_INFO) as ExperimentStage[]).filter((st) => STAGE_INFO[st].cli.steps);
  const ordered = [...REWARD_STAGES, ...training.filter((st) => !(REWARD_STAGES as readonly string[]).includes(st))];
  const stage = await pickStage(ordered, vscode.l10n.t('Stage to run under the debugger'));
  if (!stage) return;
  const run = await startStage(services, stage, uri, true);
  if (!run) return;
  const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(run.record.configFile));
  run.process.on('event', (e) => {
    if (e.type !== 'debugger') return;
    const port = Number(new URL(e.url.replace(/^ws:/, 'http:')).port);
    void vscode.debug.startDebugging(folder, {
      type: 'node',
      request: 'attach',
      name: `RLHF: ${run.record.name}`,
      address: '127.0.0.1',
      port,
      continueOnAttach: true,
      skipFiles: ['<node_internals>/**'],
    });
  });
}

async function pickStage<S extends ExperimentStage>(stages: readonly S[], placeHolder: string): Promise<S | undefined> {
  if (stages.length === 0) {
    await vscode.window.showErrorMessage(
      vscode.l10n.t('The experiment has no "grpo" or "rloo" section with reward functions.'),
    );
    return undefined;
  }
  if (stages.length === 1) return stages[0];
  const picked = await vscode.window.showQuickPick(
    stages.map((stage) => ({ label: STAGE_INFO[stage].label, stage })),
    { placeHolder },
  );
  return picked?.stage;
}

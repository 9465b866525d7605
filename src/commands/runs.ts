/** Actions on runs: Show Training Charts, Compare Training Charts, open folder, delete, refresh, and the log. */
import * as path from 'path';
import * as vscode from 'vscode';
import { ChartsPanel, pickChartRuns } from '../views/charts/chartsPanel';
import { Services } from '../services';
import { pickRun } from './common';

export function registerRunCommands(services: Services): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('rlhf.showCharts', (arg?: unknown) => showCharts(services, arg)),
    vscode.commands.registerCommand('rlhf.compareCharts', () => compareCharts(services)),
    vscode.commands.registerCommand('rlhf.openRunFolder', (arg?: unknown) => openRunFolder(services, arg)),
    vscode.commands.registerCommand('rlhf.deleteRun', (arg?: unknown) => deleteRun(services, arg)),
    vscode.commands.registerCommand('rlhf.refreshRuns', () => services.runs.refresh()),
    vscode.commands.registerCommand('rlhf.showLog', () => services.log.show()),
  ];
}

/** One run's charts, on its own stage's dashboard: the run given (a click in the Runs view), or one picked. */
async function showCharts(services: Services, arg: unknown): Promise<void> {
  const ref = await pickRun(arg, services.runs.list(), 'Run to chart', 'There are no runs yet.');
  if (ref) ChartsPanel.show(services, [ref], 'replace');
}

/** Several runs' charts side by side, picked afresh. */
async function compareCharts(services: Services): Promise<void> {
  const refs = await pickChartRuns(services, []);
  if (refs) ChartsPanel.show(services, refs, 'replace');
}

async function openRunFolder(services: Services, arg: unknown): Promise<void> {
  const ref = await pickRun(arg, services.runs.list(), 'Run folder to open', 'There are no runs yet.');
  if (ref)
    await vscode.commands.executeCommand(
      'revealFileInOS',
      vscode.Uri.file(path.join(ref.registry.dir(ref.record.id), 'run.json')),
    );
}

async function deleteRun(services: Services, arg: unknown): Promise<void> {
  const finished = services.runs.list().filter((r) => r.record.status !== 'running');
  const ref = await pickRun(arg, finished, 'Run to delete', 'There is no run to delete.');
  if (!ref) return;
  const confirm = await vscode.window.showWarningMessage(
    `Delete run "${ref.record.name}" (${ref.record.id}) with its checkpoints and metrics?`,
    { modal: true },
    'Delete',
  );
  if (confirm !== 'Delete') return;
  try {
    ref.registry.delete(ref.record.id);
  } catch (e) {
    await vscode.window.showErrorMessage((e as Error).message);
  }
  services.runs.refresh();
}

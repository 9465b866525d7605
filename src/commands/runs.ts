/** Actions on runs: Show Training Charts, metrics from another trainer, open folder, delete, refresh, and the log. */
import * as path from 'path';
import * as vscode from 'vscode';
import { readImportedMetrics } from '../runs/imported-metrics';
import { ChartsPanel, pickChartRuns } from '../views/charts/chartsPanel';
import { Services } from '../services';
import { isRunRef, pickRun } from './common';

export function registerRunCommands(services: Services): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('rlhf.showCharts', (arg?: unknown) => showCharts(services, arg)),
    vscode.commands.registerCommand('rlhf.openExternalMetrics', (uri?: vscode.Uri) =>
      openExternalMetrics(services, uri),
    ),
    vscode.commands.registerCommand('rlhf.openRunFolder', (arg?: unknown) => openRunFolder(services, arg)),
    vscode.commands.registerCommand('rlhf.deleteRun', (arg?: unknown) => deleteRun(services, arg)),
    vscode.commands.registerCommand('rlhf.refreshRuns', () => services.runs.refresh()),
    vscode.commands.registerCommand('rlhf.showLog', () => services.log.show()),
  ];
}

/** A run from the Runs view joins the panel's runs; from the palette, the runs to show are picked. */
async function showCharts(services: Services, arg: unknown): Promise<void> {
  if (isRunRef(arg)) return ChartsPanel.show(services, [arg], 'add');
  const refs = await pickChartRuns(services, ChartsPanel.shownKeys());
  if (refs) ChartsPanel.show(services, refs, 'replace');
}

/**
 * Charts a run trained elsewhere (a cluster, TRL, another tool) beside the local ones, from its
 * trainer_state.json, TensorBoard event file or JSONL metrics.
 */
async function openExternalMetrics(services: Services, uri?: vscode.Uri): Promise<void> {
  const file =
    uri?.fsPath ??
    (
      await vscode.window.showOpenDialog({
        title: 'Metrics of a run trained elsewhere',
        openLabel: 'Chart',
        filters: { 'trainer_state.json, TensorBoard events, JSONL': ['json', 'jsonl', '*'] },
      })
    )?.[0]?.fsPath;
  if (!file) return;
  try {
    const imported = readImportedMetrics(file);
    for (const note of imported.notes) services.log.warn(`charts: ${note}`);
    ChartsPanel.showImported(services, imported);
  } catch (e) {
    await vscode.window.showErrorMessage((e as Error).message);
  }
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

/**
 * Actions on runs: show or compare their charts, metrics from another trainer, open their folder,
 * rename, delete, refresh, and the log.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { readImportedMetrics } from '../runs/imported-metrics';
import { ChartsPanel, pickChartRuns } from '../views/charts/chartsPanel';
import { Services } from '../services';
import { runTitle } from '../runs/registry';
import { pickRun } from './common';

export function registerRunCommands(services: Services): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('rlhf.showCharts', (arg?: unknown) => showCharts(services, arg)),
    vscode.commands.registerCommand('rlhf.compareCharts', () => compareCharts(services)),
    vscode.commands.registerCommand('rlhf.openExternalMetrics', (uri?: vscode.Uri) =>
      openExternalMetrics(services, uri),
    ),
    vscode.commands.registerCommand('rlhf.openRunFolder', (arg?: unknown) => openRunFolder(services, arg)),
    vscode.commands.registerCommand('rlhf.deleteRun', (arg?: unknown) => deleteRun(services, arg)),
    vscode.commands.registerCommand('rlhf.renameRun', (arg?: unknown) => renameRun(services, arg)),
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

/**
 * Charts a run trained elsewhere (a cluster, TRL, another tool) beside the local ones, from its
 * trainer_state.json, TensorBoard event file or JSONL metrics.
 */
async function openExternalMetrics(services: Services, uri?: vscode.Uri): Promise<void> {
  const file =
    uri?.fsPath ??
    (
      await vscode.window.showOpenDialog({
        title: vscode.l10n.t('Metrics of a run trained elsewhere'),
        openLabel: vscode.l10n.t('Chart'),
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
  const ref = await pickRun(
    arg,
    services.runs.list(),
    vscode.l10n.t('Run folder to open'),
    vscode.l10n.t('There are no runs yet.'),
  );
  if (ref)
    await vscode.commands.executeCommand(
      'revealFileInOS',
      vscode.Uri.file(path.join(ref.registry.dir(ref.record.id), 'run.json')),
    );
}

async function deleteRun(services: Services, arg: unknown): Promise<void> {
  const finished = services.runs.list().filter((r) => r.record.status !== 'running');
  const ref = await pickRun(arg, finished, vscode.l10n.t('Run to delete'), vscode.l10n.t('There is no run to delete.'));
  if (!ref) return;
  const remove = vscode.l10n.t('Delete');
  const confirm = await vscode.window.showWarningMessage(
    vscode.l10n.t('Delete run "{0}" ({1}) with its checkpoints and metrics?', runTitle(ref.record), ref.record.id),
    { modal: true },
    remove,
  );
  if (confirm !== remove) return;
  try {
    ref.registry.delete(ref.record.id);
  } catch (e) {
    await vscode.window.showErrorMessage((e as Error).message);
  }
  services.runs.refresh();
}

/** Names a run as the person likes; a run another window or a terminal trains is renamed once it has ended. */
async function renameRun(services: Services, arg: unknown): Promise<void> {
  const ref = await pickRun(
    arg,
    services.runs.list(),
    vscode.l10n.t('Run to rename'),
    vscode.l10n.t('There are no runs yet.'),
  );
  if (!ref) return;
  const live = services.supervisor.find(ref.registry, ref.record.id);
  if (ref.record.status === 'running' && !live) {
    await vscode.window.showWarningMessage(
      vscode.l10n.t(
        '"{0}" is trained by another window or a terminal; rename it once it has ended.',
        runTitle(ref.record),
      ),
    );
    return;
  }
  const label = await vscode.window.showInputBox({
    title: vscode.l10n.t('Rename {0}', runTitle(ref.record)),
    value: runTitle(ref.record),
    prompt: vscode.l10n.t('Empty: its name from the experiment, stage and number'),
  });
  if (label === undefined) return;
  // A live run's record is the one its process's events update: rename that one.
  ref.registry.rename(live?.record ?? ref.record, label);
  services.runs.refresh();
}

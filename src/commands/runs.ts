/** Actions on runs: Show Training Charts, open folder, delete, refresh, and the log. */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { Services, notInThisVersion, pickRun } from './common';

export function registerRunCommands(services: Services): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('rlhf.showCharts', (arg?: unknown) => showCharts(services, arg)),
    vscode.commands.registerCommand('rlhf.openRunFolder', (arg?: unknown) => openRunFolder(services, arg)),
    vscode.commands.registerCommand('rlhf.deleteRun', (arg?: unknown) => deleteRun(services, arg)),
    vscode.commands.registerCommand('rlhf.refreshRuns', () => services.runs.refresh()),
    vscode.commands.registerCommand('rlhf.showLog', () => services.log.show()),
  ];
}

/** The charts panel is a later version; until then, the metrics file it will draw is one click away. */
async function showCharts(services: Services, arg: unknown): Promise<void> {
  const ref = await pickRun(arg, services.runs.list(), 'Run to chart', 'There are no runs yet.');
  if (!ref) return;
  const metrics = path.join(ref.registry.dir(ref.record.id), 'metrics.jsonl');
  if (!fs.existsSync(metrics)) return notInThisVersion('The training charts panel');
  const open = 'Open metrics.jsonl';
  const choice = await vscode.window.showInformationMessage(`The training charts panel arrives in a later version of RLHF Studio. The metrics of "${ref.record.name}" are in its metrics.jsonl.`, open);
  if (choice === open) await vscode.window.showTextDocument(vscode.Uri.file(metrics));
}

async function openRunFolder(services: Services, arg: unknown): Promise<void> {
  const ref = await pickRun(arg, services.runs.list(), 'Run folder to open', 'There are no runs yet.');
  if (ref) await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(path.join(ref.registry.dir(ref.record.id), 'run.json')));
}

async function deleteRun(services: Services, arg: unknown): Promise<void> {
  const finished = services.runs.list().filter((r) => r.record.status !== 'running');
  const ref = await pickRun(arg, finished, 'Run to delete', 'There is no run to delete.');
  if (!ref) return;
  const confirm = await vscode.window.showWarningMessage(`Delete run "${ref.record.name}" (${ref.record.id}) with its checkpoints and metrics?`, { modal: true }, 'Delete');
  if (confirm !== 'Delete') return;
  try {
    ref.registry.delete(ref.record.id);
  } catch (e) {
    await vscode.window.showErrorMessage((e as Error).message);
  }
  services.runs.refresh();
}

/**
 * Open Labeling shows the Labeling view, with room to label in; Export Preferences writes a queue's decided labels as
 * plain TRL preference pairs to a file the user picks.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import type { LabelingView } from '../views/labeling/provider';
import { Services } from '../services';
import { experimentWorkspace, pickExperiment } from './common';
import { formatDataError } from '../data/jsonl';
import { registerComparisonsFromRun } from './comparisons-from-run';

export function registerLabelingCommands(services: Services, view: LabelingView): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('rlhf.openLabeling', () => view.reveal()),
    vscode.commands.registerCommand('rlhf.showLabelingStatistics', () => view.showStatistics()),
    vscode.commands.registerCommand('rlhf.exportPreferences', (uri?: vscode.Uri) => exportPreferences(services, uri)),
    registerComparisonsFromRun(services),
  ];
}

async function exportPreferences(services: Services, uri?: vscode.Uri): Promise<void> {
  const experiment = await pickExperiment(uri);
  const workspaceFolder = experiment && (await experimentWorkspace(experiment));
  if (!experiment || !workspaceFolder) return;
  // Loaded on use: the config and data modules are not needed at activation.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { queuesOf } = require('../views/labeling/queues') as typeof import('../views/labeling/queues');
  const { exportPreferences: writeExport } = require('../data/preferences') as typeof import('../data/preferences');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const problems: string[] = [];
  const [queue] = queuesOf([{ file: experiment.fsPath, workspaceFolder }], (problem) => problems.push(problem));
  if (!queue) {
    const why =
      problems[0] ?? `${path.basename(experiment.fsPath)} has no "comparisons" section, so it has no labels to export.`;
    await vscode.window.showErrorMessage(why);
    return;
  }
  const source = queue.preferencesFile;
  const dest = await vscode.window.showSaveDialog({
    defaultUri: vscode.Uri.file(source.replace(/(\.jsonl)?$/, '.trl.jsonl')),
    filters: { 'JSON Lines': ['jsonl'] },
    saveLabel: 'Export',
    title: 'Export preference pairs (TRL format)',
  });
  if (!dest) return;
  try {
    const { exported, skipped, errors } = writeExport(source, dest.fsPath);
    for (const e of errors) services.log.warn(formatDataError(e));
    const notes = [
      skipped > 0 ? `${skipped} tie, both-bad or skipped label${skipped === 1 ? '' : 's'} left out` : '',
      errors.length > 0 ? `${errors.length} bad line${errors.length === 1 ? '' : 's'} skipped (see the log)` : '',
    ].filter(Boolean);
    const summary = `Exported ${exported} preference pair${exported === 1 ? '' : 's'} to ${path.basename(dest.fsPath)}${notes.length ? `; ${notes.join('; ')}` : ''}.`;
    await (errors.length > 0
      ? vscode.window.showWarningMessage(summary)
      : vscode.window.showInformationMessage(summary));
  } catch (err) {
    await vscode.window.showErrorMessage(`Could not export ${source}: ${(err as Error).message}`);
  }
}

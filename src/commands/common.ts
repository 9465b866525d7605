/** The small dialogs the command handlers repeat. */
import * as path from 'path';
import * as vscode from 'vscode';
import { EXPERIMENT_GLOB } from '../services';
import { RunRef } from '../views/workspaceRuns';
import { runTitle } from '../runs/registry';
import { stageLabel } from '../shared/stages';

/**
 * Training and generation run code and read files the workspace chooses, and other commands write
 * files into it, so an untrusted workspace gets an explanation and a way to trust it instead.
 */
export async function requireTrust(
  action: string,
  why = vscode.l10n.t('it runs training code on the files of this workspace'),
): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const manage = vscode.l10n.t('Manage Workspace Trust');
  const choice = await vscode.window.showWarningMessage(
    vscode.l10n.t('{0} is disabled in Restricted Mode: {1}. Trust the workspace to enable it.', action, why),
    manage,
  );
  if (choice === manage) await vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}

/**
 * The workspace folder holding an experiment file: it and every file it names must be inside one.
 * For a file outside every folder, an error says so and the result is undefined.
 */
export async function experimentWorkspace(config: vscode.Uri): Promise<string | undefined> {
  const folder = vscode.workspace.getWorkspaceFolder(config);
  if (folder) return folder.uri.fsPath;
  const why = vscode.workspace.workspaceFolders?.length
    ? vscode.l10n.t(
        '{0} is outside the workspace folders: open the folder that holds it. An experiment and the files it names must be inside a workspace folder.',
        config.fsPath,
      )
    : vscode.l10n.t('Open a folder first: experiments and their runs live in the workspace.');
  await vscode.window.showErrorMessage(why);
  return undefined;
}

/** The experiment file to use: the active editor's if it is one, else one picked from the workspace. */
export async function pickExperiment(uri?: vscode.Uri): Promise<vscode.Uri | undefined> {
  if (uri) return uri;
  const active = vscode.window.activeTextEditor?.document.uri;
  if (active?.scheme === 'file' && active.path.endsWith('.rlhf.json')) return active;
  const files = await vscode.workspace.findFiles(EXPERIMENT_GLOB, '**/node_modules/**', 100);
  if (files.length === 1) return files[0];
  if (files.length === 0) {
    const create = vscode.l10n.t('New Experiment');
    const choice = await vscode.window.showInformationMessage(
      vscode.l10n.t('There is no experiment file (*.rlhf.json) in this workspace yet.'),
      create,
    );
    if (choice === create) await vscode.commands.executeCommand('rlhf.newExperiment');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    files.map((uri) => ({
      label: path.basename(uri.fsPath),
      description: vscode.workspace.asRelativePath(path.dirname(uri.fsPath)),
      uri,
    })),
    { placeHolder: vscode.l10n.t('Experiment to run') },
  );
  return picked?.uri;
}

/** The run a command acts on: the Runs view item it was invoked on, else one picked from `candidates`. */
export async function pickRun(
  arg: unknown,
  candidates: RunRef[],
  placeHolder: string,
  none: string,
): Promise<RunRef | undefined> {
  if (isRunRef(arg)) return arg;
  if (candidates.length === 0) {
    await vscode.window.showInformationMessage(none);
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    candidates.map((ref) => ({
      label: runTitle(ref.record),
      description: `${stageLabel(ref.record.stage)} · ${ref.record.status}`,
      detail: ref.record.id,
      ref,
    })),
    { placeHolder },
  );
  return picked?.ref;
}

export function isRunRef(arg: unknown): arg is RunRef {
  return typeof arg === 'object' && arg !== null && 'registry' in arg && 'record' in arg;
}

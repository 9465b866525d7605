/**
 * Open Labeling and Export Preferences. The labeling view and the preferences file format are not
 * in this version: the commands exist so the palette shows the whole pipeline, and say so.
 */
import * as vscode from 'vscode';
import { notInThisVersion } from './common';

export function registerLabelingCommands(): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('rlhf.openLabeling', () => notInThisVersion('The labeling view')),
    vscode.commands.registerCommand('rlhf.exportPreferences', () => notInThisVersion('Exporting preferences')),
  ];
}

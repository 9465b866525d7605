/** What the extension's commands and views act on: created once on activation (src/extension.ts). */
import * as vscode from 'vscode';
import { ProcessOptions } from './runner/runner';
import { RunSupervisor } from './runner/supervisor';
import { WorkspaceRuns } from './views/workspaceRuns';

export interface Services {
  supervisor: RunSupervisor;
  runs: WorkspaceRuns;
  log: vscode.LogOutputChannel;
  /** How to start a training process (also used for one-off generation). */
  processOptions: ProcessOptions;
  /** The installed extension's folder (bundled demo data). */
  extensionPath: string;
}

/** Experiment files end in `.rlhf.json` (the manifest's jsonValidation gives them the schema). */
export const EXPERIMENT_GLOB = '**/*.rlhf.json';

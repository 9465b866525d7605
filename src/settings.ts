/** The extension's settings (package.json `contributes.configuration`), read in one place. */
import * as path from 'path';
import * as vscode from 'vscode';
import { EXECUTION_PROVIDERS, RuntimeOverrides } from './protocol/runner';

const SECTION = 'rlhf';

/** Where a workspace folder's runs live (`rlhf.runsFolder`, relative to the folder). */
export function runsFolder(folder: vscode.WorkspaceFolder): string {
  const setting = vscode.workspace.getConfiguration(SECTION, folder.uri).get<string>('runsFolder') || '.rlhf/runs';
  return path.resolve(folder.uri.fsPath, setting);
}

/**
 * The runtime settings a user has set. An unset setting leaves the experiment file's `runtime`
 * section in charge, so a config behaves the same in VS Code and in the CLI.
 */
export function runtimeOverrides(scope?: vscode.Uri): RuntimeOverrides {
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  const overrides: RuntimeOverrides = {};
  const provider = explicitValue<string>(config, 'executionProvider');
  if (provider && (EXECUTION_PROVIDERS as readonly string[]).includes(provider))
    overrides.provider = provider as RuntimeOverrides['provider'];
  const threads = explicitValue<number>(config, 'threads');
  if (typeof threads === 'number' && Number.isInteger(threads) && threads > 0) overrides.threads = threads;
  return overrides;
}

function explicitValue<T>(config: vscode.WorkspaceConfiguration, key: string): T | undefined {
  const i = config.inspect<T>(key);
  return i?.workspaceFolderValue ?? i?.workspaceValue ?? i?.globalValue;
}

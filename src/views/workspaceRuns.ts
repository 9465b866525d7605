/** The runs of every workspace folder, as the views and commands see them. */
import * as vscode from 'vscode';
import { RunSupervisor } from '../runner/supervisor';
import { runsFolder } from '../settings';
import { RunRecord, RunRegistry } from '../runs/registry';

/** A run and the registry it lives in (tree items and command arguments carry this). */
export interface RunRef {
  registry: RunRegistry;
  record: RunRecord;
}

export class WorkspaceRuns implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when any run may have changed: this window's runs, another window's, or a setting. */
  readonly onDidChange = this.changed.event;
  private readonly registries = new Map<string, RunRegistry>();
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(supervisor: RunSupervisor) {
    const fire = () => this.changed.fire();
    supervisor.on('changed', fire);
    this.disposables.push(
      { dispose: () => supervisor.off('changed', fire) },
      vscode.workspace.onDidChangeWorkspaceFolders(fire),
      vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration('rlhf.runsFolder') && fire()),
    );
    // Runs written by other windows (or deleted by hand) show up without a manual refresh.
    const watcher = vscode.workspace.createFileSystemWatcher('**/run.json');
    this.disposables.push(watcher, watcher.onDidCreate(fire), watcher.onDidChange(fire), watcher.onDidDelete(fire));
  }

  /** The registry of the workspace folder holding `uri` (the first folder when it is outside all). */
  registryFor(uri?: vscode.Uri): RunRegistry | undefined {
    const folder = (uri && vscode.workspace.getWorkspaceFolder(uri)) ?? vscode.workspace.workspaceFolders?.[0];
    return folder && this.registryAt(runsFolder(folder));
  }

  /** Every run in the workspace, newest first. */
  list(): RunRef[] {
    const roots = new Set((vscode.workspace.workspaceFolders ?? []).map(runsFolder));
    return [...roots]
      .flatMap((root) =>
        this.registryAt(root)
          .list()
          .map((record) => ({ registry: this.registryAt(root), record })),
      )
      .sort((a, b) => b.record.created.localeCompare(a.record.created));
  }

  refresh(): void {
    this.changed.fire();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  private registryAt(root: string): RunRegistry {
    let registry = this.registries.get(root);
    if (!registry) this.registries.set(root, (registry = new RunRegistry(root)));
    return registry;
  }
}

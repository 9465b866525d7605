/** The Runs view: every run of the workspace with its stage, status and key metric. */
import * as vscode from 'vscode';
import { RunStatus, runTitle } from '../runs/registry';
import { RunRef, WorkspaceRuns } from './workspaceRuns';
import { formatMetric, formatMetrics } from '../shared/format';
import { STAGE_INFO, stageLabel } from '../shared/stages';

const STATUS_ICONS: Record<RunStatus, vscode.ThemeIcon> = {
  running: new vscode.ThemeIcon('loading~spin'),
  finished: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
  stopped: new vscode.ThemeIcon('debug-pause'),
  failed: new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed')),
};

export class RunsTreeProvider implements vscode.TreeDataProvider<RunRef>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscription: vscode.Disposable;
  private pending?: NodeJS.Timeout;

  constructor(private readonly runs: WorkspaceRuns) {
    // Changes come in bursts (a metrics row and its run.json write): redraw once per burst.
    this.subscription = runs.onDidChange(() => {
      clearTimeout(this.pending);
      this.pending = setTimeout(() => this.changed.fire(), 150);
    });
  }

  getChildren(element?: RunRef): RunRef[] {
    return element ? [] : this.runs.list();
  }

  getTreeItem({ registry, record }: RunRef): vscode.TreeItem {
    const item = new vscode.TreeItem(runTitle(record), vscode.TreeItemCollapsibleState.None);
    item.id = registry.dir(record.id);
    const progress = record.total ? `step ${record.step}/${record.total}` : `step ${record.step}`;
    const key = STAGE_INFO[record.stage].keyMetrics.find((k) => record.metrics[k] !== undefined);
    // The key metric first, where a narrow view cannot cut it off.
    item.description = [key && `${key} ${formatMetric(record.metrics[key])}`, record.status, progress]
      .filter(Boolean)
      .join(' · ');
    item.iconPath = STATUS_ICONS[record.status];
    // One click shows the run's charts, on its own stage's dashboard.
    item.command = { command: 'rlhf.showCharts', title: 'Show Training Charts', arguments: [{ registry, record }] };

    const tooltip = new vscode.MarkdownString(undefined, true);
    tooltip.appendMarkdown(`**${runTitle(record)}** · ${stageLabel(record.stage)} · ${record.status}\n\n`);
    tooltip.appendMarkdown(`started ${new Date(record.created).toLocaleString()} · ${progress}\n\n`);
    tooltip.appendText(`${record.configFile}\n\n`);
    if (Object.keys(record.metrics).length) tooltip.appendCodeblock(formatMetrics(record.metrics), 'text');
    if (record.error) tooltip.appendCodeblock([record.error, ...(record.logTail ?? []).slice(-8)].join('\n'), 'text');
    item.tooltip = tooltip;

    // Flags the context menus test with `viewItem =~ /.../`.
    const flags = [`rlhfRun.${record.status}`];
    if (record.status !== 'running' && record.status !== 'finished' && registry.latestCheckpoint(record))
      flags.push('resumable');
    if (registry.modelDir(record.id) || registry.latestCheckpoint(record)) flags.push('hasModel');
    if (registry.adapterDir(record.id)) flags.push('hasAdapter');
    item.contextValue = flags.join('.');
    return item;
  }

  dispose(): void {
    clearTimeout(this.pending);
    this.subscription.dispose();
    this.changed.dispose();
  }
}

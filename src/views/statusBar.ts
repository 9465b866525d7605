/** A status bar item while runs are live: stage, step and time left of the latest one. */
import * as vscode from 'vscode';
import { LiveRun, RunSupervisor } from '../runner/supervisor';
import { formatDuration } from '../shared/format';
import { stageLabel } from '../shared/stages';

export class TrainingStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('rlhf.training', vscode.StatusBarAlignment.Left, 10);
  private latest?: LiveRun;
  private readonly update = (run?: LiveRun) => this.render(run);

  constructor(private readonly supervisor: RunSupervisor) {
    this.item.name = 'RLHF Training';
    this.item.command = 'rlhf.showLog';
    supervisor.on('started', this.update).on('event', this.update).on('ended', this.update);
  }

  private render(changed?: LiveRun): void {
    const runs = this.supervisor.runs();
    if (changed && runs.includes(changed)) this.latest = changed;
    if (!this.latest || !runs.includes(this.latest)) this.latest = runs[runs.length - 1];
    const run = this.latest;
    if (!run) return this.item.hide();
    const { stage, step, total, name } = run.record;
    const eta = run.etaSeconds();
    const others = runs.length > 1 ? ` (+${runs.length - 1})` : '';
    this.item.text = `$(loading~spin) ${stageLabel(stage)} ${total ? `${step}/${total}` : 'starting'}${eta !== undefined ? ` · ${formatDuration(eta)} left` : ''}${others}`;
    this.item.tooltip = `RLHF Studio: ${name} (${run.record.id}). Click for the log.`;
    this.item.show();
  }

  dispose(): void {
    this.supervisor.off('started', this.update).off('event', this.update).off('ended', this.update);
    this.item.dispose();
  }
}

/** Feeds the 'RLHF Studio' log channel with what every training process says. */
import * as vscode from 'vscode';
import { RunEvent } from '../protocol/runner';
import { LogLine, ProcessOutcome } from '../runner/runner';
import { LiveRun, RunSupervisor } from '../runner/supervisor';
import { formatMetrics } from '../shared/format';

export function logRuns(supervisor: RunSupervisor, log: vscode.LogOutputChannel): vscode.Disposable {
  const tag = (run: LiveRun) => `[${run.record.id}]`;
  const onEvent = (run: LiveRun, e: RunEvent) => {
    switch (e.type) {
      case 'log':
        log[e.level](`${tag(run)} ${e.message}`);
        break;
      case 'metrics':
        log.info(`${tag(run)} step ${e.step}: ${formatMetrics(e.values)}`);
        break;
      case 'samples':
        log.info(
          `${tag(run)} samples at step ${e.step}:\n${e.rows.map((r) => `  ${r.prompt.trim()}\n    → ${r.response.trim() || '(nothing)'}`).join('\n')}`,
        );
        break;
      case 'checkpoint':
        log.info(`${tag(run)} saved ${e.path}`);
        break;
      case 'done':
      case 'progress':
      case 'download':
        break;
    }
  };
  const onLog = (run: LiveRun, line: LogLine) => log[line.level](`${tag(run)} ${line.message}`);
  const onStart = (run: LiveRun) =>
    log.info(
      `${tag(run)} started (process ${run.process.pid ?? '?'}): ${run.record.configFile}${run.record.resumedFrom ? `, resuming from ${run.record.resumedFrom}` : ''}`,
    );
  const onEnded = (run: LiveRun, outcome: ProcessOutcome) => {
    if (outcome.status !== 'failed') return log.info(`${tag(run)} ${outcome.status} at step ${outcome.step}`);
    log.error(`${tag(run)} failed: ${outcome.error}`);
    if (outcome.logTail.length)
      log.error(`${tag(run)} its last log lines:\n${outcome.logTail.map((l) => `  ${l}`).join('\n')}`);
  };
  supervisor.on('started', onStart).on('event', onEvent).on('log', onLog).on('ended', onEnded);
  return {
    dispose: () => supervisor.off('started', onStart).off('event', onEvent).off('log', onLog).off('ended', onEnded),
  };
}

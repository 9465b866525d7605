/** Train SFT, Generate Comparisons, Train Reward Model, Run PPO, Stop Run, Resume Run. */
import * as vscode from 'vscode';
import { EXPERIMENT_STAGES, ExperimentStage } from '../protocol/runner';
import { ProcessOutcome, STOP_TIMEOUT_MS } from '../runner/runner';
import { LiveRun } from '../runner/supervisor';
import { StopWait, runTitle, skippedCheckpoints } from '../runs/registry';
import { RunRef } from '../views/workspaceRuns';
import { runtimeOverrides } from '../settings';
import { formatMetric } from '../shared/format';
import { formatDownload } from '../hub/progress';
import { weakRewardModel } from '../model/reward-warnings';
import type { Experiment } from '../experiment/config';
import { NextStep, STAGE_INFO } from '../shared/stages';
import { Services } from '../services';
import { experimentWorkspace, pickExperiment, pickRun, requireTrust } from './common';

/** The command behind each next step a finished run offers (each takes the run). */
const NEXT_STEP_COMMANDS: Record<NextStep, string> = {
  'Generate with Model': 'rlhf.generateWithModel',
  'Open Folder': 'rlhf.openRunFolder',
  'Open Labeling': 'rlhf.openLabeling',
};

export function registerTrainingCommands(services: Services): vscode.Disposable[] {
  return [
    ...EXPERIMENT_STAGES.map((stage) =>
      vscode.commands.registerCommand(STAGE_INFO[stage].command, (uri?: vscode.Uri) =>
        startStage(services, stage, uri),
      ),
    ),
    vscode.commands.registerCommand('rlhf.stopRun', (arg?: unknown) => stopRun(services, arg)),
    vscode.commands.registerCommand('rlhf.resumeRun', (arg?: unknown) => resumeRun(services, arg)),
  ];
}

/** Starts a stage on an experiment file (the one given, the active editor's, or one picked). */
export async function startStage(
  services: Services,
  stage: ExperimentStage,
  uri?: vscode.Uri,
  debug = false,
): Promise<LiveRun | undefined> {
  if (!(await requireTrust(STAGE_INFO[stage].work))) return undefined;
  const config = await pickExperiment(uri);
  const workspaceFolder = config && (await experimentWorkspace(config));
  const registry = config && services.runs.registryFor(config);
  if (!config || !workspaceFolder || !registry) return undefined;
  const experiment = loadConfig(config, workspaceFolder);
  if (!experiment) return undefined;
  const runtime = runtimeOverrides(config);
  const run = services.supervisor.start({
    stage,
    configFile: config.fsPath,
    workspaceFolder,
    registry,
    runtime,
    debug,
  });
  void followRun(services, run);
  if (stage === 'ppo') warnOfWeakRewardModel(run, experiment.ppo?.reward_model ?? run.record.models?.rm);
  return run;
}

/**
 * The experiment file, validated before a run starts: one the schema refuses shows its errors,
 * with the file a click away, and leaves no failed run behind.
 */
function loadConfig(config: vscode.Uri, workspaceFolder: string): Experiment | undefined {
  // Loaded on use: the config module is not needed at activation.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { loadExperiment } = require('../experiment/config') as typeof import('../experiment/config');
  try {
    return loadExperiment(config.fsPath, workspaceFolder);
  } catch (err) {
    const open = 'Open Experiment';
    void vscode.window
      .showErrorMessage(vscode.l10n.t('Not started: {0}', (err as Error).message), open)
      .then((choice) => choice && vscode.window.showTextDocument(config));
    return undefined;
  }
}

/** PPO is about to score with a reward model whose training warned: say so now, not only in the log. */
function warnOfWeakRewardModel(run: LiveRun, rewardModel: string | undefined): void {
  const weak = weakRewardModel(rewardModel);
  if (weak) void vscode.window.showWarningMessage(vscode.l10n.t('{0} starts, but {1}.', runTitle(run.record), weak));
}

/** Stops a run after its step: this window's own, or one that another window or a terminal trains. */
export async function stopRun(services: Services, arg: unknown): Promise<void> {
  const running = services.runs.list().filter((r) => r.record.status === 'running');
  const ref = await pickRun(arg, running, 'Run to stop', 'No run is training.');
  if (!ref) return;
  const run = services.supervisor.find(ref.registry, ref.record.id);
  if (!run && process.platform === 'win32') {
    // Windows has no SIGINT to send: a signal would end the process without its checkpoint.
    await vscode.window.showWarningMessage(
      `"${ref.record.name}" is trained by another window or a terminal; stop it there.`,
    );
    return;
  }
  const title = `Stopping ${ref.record.name} after this step…`;
  try {
    if (run) await withWindowProgress(title, () => services.supervisor.stop(run));
    else await stopElsewhere(services, ref, title);
  } catch (e) {
    await vscode.window.showErrorMessage((e as Error).message);
  }
  services.runs.refresh();
}

/**
 * Stops a run that another window or a terminal trains. A run that looked live but whose process
 * is gone or is another program is not signalled, and says so.
 */
async function stopElsewhere(services: Services, ref: RunRef, title: string): Promise<void> {
  const wait = { timeoutMs: services.processOptions.stopTimeoutMs ?? STOP_TIMEOUT_MS };
  const stop = await withWindowProgress(title, () => ref.registry.stopElsewhere(ref.record.id, wait));
  if (stop.result === 'timeout') return offerForceStop(ref, wait);
  if (stop.result !== 'stale') return;
  const stale = `${processOf(ref)} is gone or is another program, so it was not signalled`;
  const name = `Run "${ref.record.name}"`;
  await vscode.window.showWarningMessage(`${name} looks stale: ${stale}. It is now marked ${stop.record?.status}.`);
}

/** A process that has not ended within the wait may be forced to (its current step is lost), or left running. */
async function offerForceStop(ref: RunRef, wait: StopWait): Promise<void> {
  const name = `Run "${ref.record.name}"`;
  const force = 'Force Stop';
  const choice = await vscode.window.showWarningMessage(
    `${name} did not stop within ${wait.timeoutMs / 1000} s; ${processOf(ref)} is still running. ` +
      'Force Stop ends it now, without a checkpoint for the current step; otherwise it is left running.',
    force,
  );
  if (choice !== force) return;
  const title = `Ending ${ref.record.name}…`;
  const forced = await withWindowProgress(title, () => ref.registry.forceStopElsewhere(ref.record.id, wait));
  if (forced.result !== 'timeout') return;
  await vscode.window.showErrorMessage(`${name}: ${processOf(ref)} has not ended, even when killed.`);
}

function processOf(ref: RunRef): string {
  return ref.record.pid ? `its process ${ref.record.pid}` : 'its process';
}

function withWindowProgress<T>(title: string, task: () => Promise<T>): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title }, task);
}

async function resumeRun(services: Services, arg: unknown): Promise<void> {
  const resumable = services.runs
    .list()
    .filter(
      (r) => (r.record.status === 'stopped' || r.record.status === 'failed') && r.registry.latestCheckpoint(r.record),
    );
  const ref = await pickRun(
    arg,
    resumable,
    'Run to resume from its last checkpoint',
    'No stopped or failed run has a checkpoint to resume from.',
  );
  if (!ref || !(await requireTrust(STAGE_INFO[ref.record.stage].work))) return;
  const config = vscode.Uri.file(ref.record.configFile);
  const workspaceFolder = await experimentWorkspace(config);
  if (!workspaceFolder) return;
  try {
    const run = services.supervisor.resume(ref.registry, ref.record.id, workspaceFolder, runtimeOverrides(config));
    void followRun(services, run);
    const skipped = skippedCheckpoints(ref.registry.checkpoints(ref.record));
    if (skipped.length) void vscode.window.showWarningMessage(skipped.join(' '));
  } catch (e) {
    await vscode.window.showErrorMessage((e as Error).message);
  }
}

/**
 * A cancellable notification for the life of the run (cancel = stop with a checkpoint, or stop a
 * model's download), showing its model downloads and steps, then the outcome.
 */
async function followRun(services: Services, run: LiveRun): Promise<void> {
  const { record } = run;
  const title = runTitle(record);
  const outcome = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title, cancellable: true },
    (progress, token) => {
      token.onCancellationRequested(() => {
        progress.report({ message: 'stopping after this step…' });
        void services.supervisor.stop(run);
      });
      let done = 0;
      run.process.on('event', (e) => {
        if (token.isCancellationRequested) return;
        if (e.type === 'download') return progress.report({ message: `downloading ${formatDownload(e)}` });
        if (e.type !== 'progress' || !e.total) return;
        const percent = (100 * e.step) / e.total;
        const loss = record.metrics.loss;
        progress.report({
          increment: percent - done,
          message: `step ${e.step}/${e.total}${loss !== undefined ? ` · loss ${formatMetric(loss)}` : ''}`,
        });
        done = percent;
      });
      return run.process.outcome;
    },
  );
  await reportOutcome(services, run, outcome);
}

async function reportOutcome(services: Services, run: LiveRun, outcome: ProcessOutcome): Promise<void> {
  const ref = { registry: run.registry, record: run.record };
  const name = runTitle(run.record);
  if (outcome.status === 'finished') {
    const actions = STAGE_INFO[run.record.stage].nextSteps;
    const choice = outcome.warning
      ? await vscode.window.showWarningMessage(
          vscode.l10n.t('{0} finished, but {1}', name, outcome.warning),
          ...actions,
        )
      : await vscode.window.showInformationMessage(vscode.l10n.t('{0} finished.', name), ...actions);
    if (choice) await vscode.commands.executeCommand(NEXT_STEP_COMMANDS[choice], ref);
  } else if (outcome.status === 'stopped' && run.record.stage === 'comparisons') {
    await vscode.window.showInformationMessage(
      vscode.l10n.t(
        '{0} stopped; the pairs queued so far are kept, and Generate Comparisons goes on from there.',
        name,
      ),
    );
  } else if (outcome.status === 'stopped') {
    const stopped = vscode.l10n.t('{0} stopped at step {1}; a checkpoint was saved.', name, outcome.step);
    const choice = outcome.warning
      ? await vscode.window.showWarningMessage(
          vscode.l10n.t('{0} Before resuming: {1}', stopped, outcome.warning),
          'Resume Run',
        )
      : await vscode.window.showInformationMessage(stopped, 'Resume Run');
    if (choice) await vscode.commands.executeCommand('rlhf.resumeRun', ref);
  } else {
    const actions = run.registry.latestCheckpoint(run.record) ? ['Show Log', 'Resume Run'] : ['Show Log'];
    const choice = await vscode.window.showErrorMessage(
      vscode.l10n.t('{0} failed: {1}', name, outcome.error ?? ''),
      ...actions,
    );
    if (choice === 'Show Log') services.log.show();
    if (choice === 'Resume Run') await vscode.commands.executeCommand('rlhf.resumeRun', ref);
  }
}

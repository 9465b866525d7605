/**
 * The extension host's entry: wires the pieces together and nothing else. Training runs in a
 * separate process per run (src/runner/train-process.ts); this host never loads onnxruntime.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { registerAdapterCommands } from './commands/adapters';
import { registerExperimentCommands } from './commands/experiments';
import { registerExportCommands } from './commands/export';
import { registerGenerationCommands } from './commands/generation';
import { registerRewardCommands } from './commands/rewards';
import { registerLabelingCommands } from './commands/labeling';
import { registerRunCommands } from './commands/runs';
import { registerTrainingCommands } from './commands/training';
import { Services } from './services';
import { RunSupervisor } from './runner/supervisor';
import { WorkspaceRuns } from './views/workspaceRuns';
import { registerChartsSerializer } from './views/charts/chartsPanel';
import { registerLabelingView } from './views/labeling/provider';
import { logRuns } from './views/runLog';
import { RunsTreeProvider } from './views/runsTree';
import { TrainingStatusBar } from './views/statusBar';

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('RLHF Studio', { log: true });
  const processOptions = { entry: context.asAbsolutePath(path.join('dist', 'train-process.js')) };
  const supervisor = new RunSupervisor(processOptions);
  const runs = new WorkspaceRuns(supervisor);
  const runsTree = new RunsTreeProvider(runs);
  const services: Services = { supervisor, runs, log, processOptions, extensionPath: context.extensionPath };
  const labeling = registerLabelingView(context, services);

  context.subscriptions.push(
    log,
    runs,
    runsTree,
    vscode.window.registerTreeDataProvider('rlhf.runs', runsTree),
    new TrainingStatusBar(supervisor),
    logRuns(supervisor, log),
    ...registerExperimentCommands(services),
    ...registerExportCommands(services),
    ...registerTrainingCommands(services),
    ...registerGenerationCommands(services),
    ...registerRewardCommands(services),
    ...registerAdapterCommands(services),
    ...registerRunCommands(services),
    registerChartsSerializer(services),
    ...labeling.disposables,
    ...registerLabelingCommands(services, labeling.view),
    // Closing the window stops every run after its current step, with a checkpoint to resume from.
    { dispose: () => supervisor.stopAll() },
  );
}

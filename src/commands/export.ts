/** Export Experiment for TRL / for OpenRLHF: the experiment as a folder another trainer launches on a cluster. */
import * as vscode from 'vscode';
import { ExportTarget, exportExperiment } from '../export';
import { Services } from '../services';
import { experimentWorkspace, pickExperiment, requireTrust } from './common';

const TARGETS: Record<ExportTarget, { command: string; title: string }> = {
  trl: { command: 'rlhf.exportTrl', title: 'TRL' },
  openrlhf: { command: 'rlhf.exportOpenRlhf', title: 'OpenRLHF' },
};

export function registerExportCommands(services: Services): vscode.Disposable[] {
  return (Object.keys(TARGETS) as ExportTarget[]).map((target) =>
    vscode.commands.registerCommand(TARGETS[target].command, (uri?: vscode.Uri) => exportTo(services, target, uri)),
  );
}

async function exportTo(services: Services, target: ExportTarget, uri?: vscode.Uri): Promise<void> {
  const title = TARGETS[target].title;
  if (
    !(await requireTrust(vscode.l10n.t('Export for {0}', title), vscode.l10n.t('it writes files into this workspace')))
  )
    return;
  const config = await pickExperiment(uri);
  const workspace = config && (await experimentWorkspace(config));
  if (!config || !workspace) return;
  const gpus = await vscode.window.showInputBox({
    prompt: vscode.l10n.t('GPUs per machine the {0} job will use', title),
    value: '8',
    validateInput: (v) =>
      /^[1-9]\d*$/.test(v.trim()) ? undefined : vscode.l10n.t('a whole number of GPUs, at least 1'),
  });
  if (!gpus) return;
  try {
    const { dir, bundle } = await exportExperiment({
      target,
      config: config.fsPath,
      workspace,
      layout: { gpus: Number(gpus), nodes: 1 },
    });
    services.log.info(`exported for ${title} to ${dir}: ${bundle.launch.join('; ')}`);
    await vscode.commands.executeCommand(
      'markdown.showPreview',
      vscode.Uri.joinPath(vscode.Uri.file(dir), 'README.md'),
    );
    const launch = vscode.l10n.t('Exported for {0}: {1}.', title, bundle.launch.join(vscode.l10n.t(', then ')));
    const unmapped = bundle.unmapped.length
      ? vscode.l10n.t('{0} {1} settings did not carry over (see README).', launch, bundle.unmapped.length)
      : launch;
    void vscode.window.showInformationMessage(unmapped);
  } catch (e) {
    await vscode.window.showErrorMessage(vscode.l10n.t('Export for {0} failed: {1}', title, (e as Error).message));
  }
}

/** Merge LoRA Adapter: a PEFT adapter folder (a LoRA run's model) merged into its base as a full model folder. */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { ADAPTER_FILES } from '../model/checkpoint-layout';
import { mergeAdapter } from '../runner/runner';
import { Services } from '../services';
import { isRunRef, requireTrust } from './common';

export function registerAdapterCommands(services: Services): vscode.Disposable[] {
  return [vscode.commands.registerCommand('rlhf.mergeAdapter', (arg?: unknown) => mergeLoraAdapter(services, arg))];
}

const isAdapterFolder = (dir: string) => fs.existsSync(path.join(dir, ADAPTER_FILES.config));

async function mergeLoraAdapter(services: Services, arg: unknown): Promise<void> {
  if (!(await requireTrust(vscode.l10n.t('Merging an adapter')))) return;
  const adapter = isRunRef(arg) ? arg.registry.adapterDir(arg.record.id) : await pickAdapter(services);
  if (!adapter) return;
  if (!isAdapterFolder(adapter)) {
    void vscode.window.showErrorMessage(
      vscode.l10n.t('{0} is not a LoRA adapter folder (it has no adapter_config.json).', adapter),
    );
    return;
  }
  const outputDir = await vscode.window.showInputBox({
    title: vscode.l10n.t('Merge LoRA Adapter: folder for the merged model'),
    value: path.join(path.dirname(adapter), 'merged'),
    ignoreFocusOut: true,
  });
  if (!outputDir) return;
  try {
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Merging the adapter…') },
      () => mergeAdapter({ adapter, outputDir }, services.processOptions),
    );
    void vscode.window.showInformationMessage(vscode.l10n.t('Merged model written to {0}', outputDir));
  } catch (e) {
    services.log.error(`merging ${adapter} failed: ${(e as Error).message}`);
    void vscode.window.showErrorMessage(vscode.l10n.t('Merge failed: {0}', (e as Error).message));
  }
}

/** A LoRA run's final model, or a folder to browse for. */
async function pickAdapter(services: Services): Promise<string | undefined> {
  const browse = { label: `$(folder-opened) ${vscode.l10n.t('Browse for an adapter folder…')}`, dir: undefined };
  const items = services.runs.list().flatMap((ref) => {
    const dir = ref.registry.modelDir(ref.record.id);
    return dir && isAdapterFolder(dir)
      ? [{ label: ref.record.name, description: ref.record.stage, detail: dir, dir }]
      : [];
  });
  const picked = await vscode.window.showQuickPick([...items, browse], {
    placeHolder: vscode.l10n.t('Adapter to merge'),
  });
  if (!picked) return undefined;
  if (picked.dir) return picked.dir;
  const folders = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    openLabel: vscode.l10n.t('Merge this adapter'),
    title: vscode.l10n.t('A PEFT adapter folder (adapter_config.json + adapter_model.safetensors)'),
  });
  return folders?.[0]?.fsPath;
}

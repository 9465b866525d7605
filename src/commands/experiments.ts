/** New Experiment: a folder with an experiment file, from the bundled demo or empty. */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { Services } from '../services';
import { requireTrust } from './common';

export type ExperimentTemplate = 'demo' | 'empty';

/** The demo's data files, copied beside the new experiment file. */
const DEMO_FILES = ['sft.jsonl', 'prompts.jsonl', 'eval.jsonl', 'guidelines.md', 'rewards.ts'];

export function registerExperimentCommands(services: Services): vscode.Disposable[] {
  return [vscode.commands.registerCommand('rlhf.newExperiment', () => newExperiment(services))];
}

async function newExperiment(services: Services): Promise<void> {
  if (!(await requireTrust(vscode.l10n.t('New Experiment'), vscode.l10n.t('it writes files into this workspace'))))
    return;
  const folder = await pickWorkspaceFolder();
  if (!folder) return;
  const template = await vscode.window.showQuickPick(
    [
      {
        label: `$(beaker) ${vscode.l10n.t('From the demo')}`,
        description: vscode.l10n.t('animal questions and answers; a tiny GPT-2 that trains on a CPU in minutes'),
        template: 'demo' as const,
      },
      {
        label: `$(new-file) ${vscode.l10n.t('Empty')}`,
        description: vscode.l10n.t('an experiment file and an empty SFT data file to fill'),
        template: 'empty' as const,
      },
    ],
    { placeHolder: vscode.l10n.t('New RLHF experiment') },
  );
  if (!template) return;
  const name = await vscode.window.showInputBox({
    prompt: vscode.l10n.t('Experiment name; its folder is created in {0}', folder.name),
    value: template.template === 'demo' ? 'demo' : 'experiment',
    validateInput: (value) => experimentNameProblem(folder.uri.fsPath, value),
  });
  if (!name) return;
  const file = createExperiment(
    folder.uri.fsPath,
    name,
    template.template,
    path.join(services.extensionPath, 'media', 'demo'),
  );
  const uri = vscode.Uri.file(file);
  await vscode.window.showTextDocument(uri);
  const train = vscode.l10n.t('Train SFT');
  const next =
    template.template === 'demo'
      ? vscode.l10n.t('Experiment "{0}" is ready.', name)
      : vscode.l10n.t('Experiment "{0}" is ready: add SFT examples to {1}.', name, `${name}/sft.jsonl`);
  if ((await vscode.window.showInformationMessage(next, train)) === train)
    await vscode.commands.executeCommand('rlhf.trainSft', uri);
}

/** Why `name` cannot be a new experiment folder in `parent`, or undefined when it can. */
export function experimentNameProblem(parent: string, name: string): string | undefined {
  if (!/^[\w][\w.-]*$/.test(name)) return vscode.l10n.t('Use letters, digits, "-", "_" and "."');
  if (fs.existsSync(path.join(parent, name))) return vscode.l10n.t('{0} already exists', name);
  return undefined;
}

/** Writes `<parent>/<name>/<name>.rlhf.json` (and its data files); returns the experiment file. */
export function createExperiment(parent: string, name: string, template: ExperimentTemplate, demoDir: string): string {
  const problem = experimentNameProblem(parent, name);
  if (problem) throw new Error(problem);
  const dir = path.join(parent, name);
  fs.mkdirSync(dir, { recursive: true });
  let config: Record<string, unknown>;
  if (template === 'demo') {
    // The demo's $schema points into the extension; jsonValidation gives *.rlhf.json files the schema instead.
    const { $schema: _, ...demo } = JSON.parse(
      fs.readFileSync(path.join(demoDir, 'experiment.json'), 'utf8'),
    ) as Record<string, unknown>;
    config = { ...demo, name };
    for (const f of DEMO_FILES) fs.copyFileSync(path.join(demoDir, f), path.join(dir, f));
  } else {
    config = {
      name,
      seed: 42,
      model: 'tiny',
      runtime: { provider: 'auto' },
      sft: { data: 'sft.jsonl', max_steps: 300 },
    };
    fs.writeFileSync(path.join(dir, 'sft.jsonl'), '');
  }
  const file = path.join(dir, `${name}.rlhf.json`);
  fs.writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

async function pickWorkspaceFolder(): Promise<vscode.WorkspaceFolder | undefined> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (folders.length === 1) return folders[0];
  if (folders.length > 1)
    return vscode.window.showWorkspaceFolderPick({ placeHolder: vscode.l10n.t('Workspace folder for the experiment') });
  const open = vscode.l10n.t('Open Folder');
  if (
    (await vscode.window.showInformationMessage(
      vscode.l10n.t('Open a folder first: experiments and their runs live in the workspace.'),
      open,
    )) === open
  ) {
    await vscode.commands.executeCommand('workbench.action.files.openFolder');
  }
  return undefined;
}

/** Generate with Model: a prompt, a completion from a run's model, shown in a new editor. */
import * as path from 'path';
import * as vscode from 'vscode';
import { generate } from '../runner/runner';
import { RunRef } from '../views/workspaceRuns';
import { runtimeOverrides } from '../settings';
import { STAGE_INFO, stageLabel } from '../shared/stages';
import { Services } from '../services';
import { isRunRef, requireTrust } from './common';

/** The CLI's defaults; the seed changes per call so asking again gives another answer. */
const SAMPLING = { maxNewTokens: 48, temperature: 0.7, topK: 0, topP: 1 };

export function registerGenerationCommands(services: Services): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('rlhf.generateWithModel', (arg?: unknown) => generateWithModel(services, arg)),
  ];
}

async function generateWithModel(services: Services, arg: unknown): Promise<void> {
  if (!(await requireTrust('Generation'))) return;
  const model = isRunRef(arg) ? modelOf(arg) : await pickModel(services);
  if (!model) return;
  const prompt = await vscode.window.showInputBox({
    title: `Generate with ${path.basename(path.dirname(model))}/${path.basename(model)}`,
    prompt: 'Prompt',
    placeHolder: 'What does a cat eat?',
    ignoreFocusOut: true,
  });
  if (!prompt) return;
  try {
    const rows = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Generating…', cancellable: true },
      (_progress, token) => {
        const cancel = new AbortController();
        token.onCancellationRequested(() => cancel.abort());
        const seed = Math.floor(Math.random() * 2 ** 31);
        return generate(
          { model, prompts: [prompt], sampling: SAMPLING, seed, runtime: runtimeOverrides() },
          services.processOptions,
          cancel.signal,
        );
      },
    );
    const doc = await vscode.workspace.openTextDocument({
      content: `${prompt}${rows[0]?.response ?? ''}`,
      language: 'plaintext',
    });
    await vscode.window.showTextDocument(doc);
  } catch (e) {
    services.log.error(`generation with ${model} failed: ${(e as Error).message}`);
    const choice = await vscode.window.showErrorMessage(`Generation failed: ${(e as Error).message}`, 'Show Log');
    if (choice) services.log.show();
  }
}

/** A run's final model, else the model to generate with of its newest checkpoint (PPO's policy). */
function modelOf({ registry, record }: RunRef): string | undefined {
  const checkpoint = registry.latestCheckpoint(record);
  const generating = STAGE_INFO[record.stage].checkpointModels.slice(0, 1);
  return registry.modelDir(record.id) ?? (checkpoint && path.join(checkpoint.path, ...generating));
}

async function pickModel(services: Services): Promise<string | undefined> {
  const browse = { label: '$(folder-opened) Browse for a model folder…', model: undefined };
  const items = services.runs
    .list()
    .filter((ref) => STAGE_INFO[ref.record.stage].generates)
    .flatMap((ref) => {
      const model = modelOf(ref);
      return model
        ? [
            {
              label: ref.record.name,
              description: `${stageLabel(ref.record.stage)} · ${path.basename(model)}`,
              detail: ref.record.id,
              model,
            },
          ]
        : [];
    });
  const picked = await vscode.window.showQuickPick([...items, browse], { placeHolder: 'Model to generate with' });
  if (!picked) return undefined;
  if (picked.model) return picked.model;
  const folders = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    openLabel: 'Use this model',
    title: 'A checkpoint folder (config.json + model.safetensors)',
  });
  return folders?.[0]?.fsPath;
}

/**
 * Generate with Model: a prompt, a completion from a run's model, shown in a read-only editor with
 * the model, its settings and the time (nothing to save, nothing asks to be saved on close).
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { generate } from '../runner/runner';
import { RunRef } from '../views/workspaceRuns';
import { runTitle } from '../runs/registry';
import { runtimeOverrides } from '../settings';
import { STAGE_INFO, stageLabel } from '../shared/stages';
import { generationMarkdown } from '../shared/generation-report';
import { Services } from '../services';
import { isRunRef, requireTrust } from './common';

/** The CLI's defaults; the seed changes per call so asking again gives another answer. */
const SAMPLING = { maxNewTokens: 48, temperature: 0.7, topK: 0, topP: 1 };

const RESULT_SCHEME = 'rlhf-generation';

/** The generations of this window, as read-only documents. */
class GenerationResults implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();

  add(title: string, text: string): vscode.Uri {
    const uri = vscode.Uri.from({ scheme: RESULT_SCHEME, path: `/${this.texts.size + 1} ${title}.md` });
    this.texts.set(uri.toString(), text);
    return uri;
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? '';
  }
}

export function registerGenerationCommands(services: Services): vscode.Disposable[] {
  const results = new GenerationResults();
  return [
    vscode.workspace.registerTextDocumentContentProvider(RESULT_SCHEME, results),
    vscode.commands.registerCommand('rlhf.generateWithModel', (arg?: unknown) =>
      generateWithModel(services, results, arg),
    ),
  ];
}

async function generateWithModel(services: Services, results: GenerationResults, arg: unknown): Promise<void> {
  if (!(await requireTrust(vscode.l10n.t('Generation')))) return;
  const picked = isRunRef(arg) ? runModel(arg) : await pickModel(services);
  if (!picked) return;
  const { model, name: modelName } = picked;
  const prompt = await vscode.window.showInputBox({
    title: vscode.l10n.t('Generate with {0}', `${path.basename(path.dirname(model))}/${path.basename(model)}`),
    prompt: vscode.l10n.t('Prompt'),
    placeHolder: vscode.l10n.t('What does a cat eat?'),
    ignoreFocusOut: true,
  });
  if (!prompt) return;
  try {
    const started = new Date();
    const seed = Math.floor(Math.random() * 2 ** 31);
    const rows = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Generating…'), cancellable: true },
      (_progress, token) => {
        const cancel = new AbortController();
        token.onCancellationRequested(() => cancel.abort());
        return generate(
          { model, prompts: [prompt], sampling: SAMPLING, seed, runtime: runtimeOverrides() },
          services.processOptions,
          cancel.signal,
        );
      },
    );
    const seconds = (Date.now() - started.getTime()) / 1000;
    const completion = rows[0]?.response ?? '';
    const report = { modelName, model, prompt, completion, sampling: SAMPLING, seed, started, seconds };
    const uri = results.add(`Generation with ${modelName}`, generationMarkdown(report));
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri), { preview: false });
  } catch (e) {
    services.log.error(`generation with ${model} failed: ${(e as Error).message}`);
    const choice = await vscode.window.showErrorMessage(
      vscode.l10n.t('Generation failed: {0}', (e as Error).message),
      vscode.l10n.t('Show Log'),
    );
    if (choice) services.log.show();
  }
}

/** A run's final model, else the model to generate with of its newest checkpoint (PPO's policy). */
function modelOf({ registry, record }: RunRef): string | undefined {
  const checkpoint = registry.latestCheckpoint(record);
  const generating = STAGE_INFO[record.stage].checkpointModels.slice(0, 1);
  return registry.modelDir(record.id) ?? (checkpoint && path.join(checkpoint.path, ...generating));
}

/** A run's model with the name it goes by: the run, its stage and when it started. */
function runModel(ref: RunRef): { model: string; name: string } | undefined {
  const model = modelOf(ref);
  return model
    ? { model, name: `${runTitle(ref.record)} (${new Date(ref.record.created).toLocaleString()})` }
    : undefined;
}

/** A run's model (runs told apart by stage and start time), or a model folder browsed for. */
export async function pickModel(
  services: Services,
  placeHolder = vscode.l10n.t('Model to generate with'),
): Promise<{ model: string; name: string } | undefined> {
  const browse = { label: `$(folder-opened) ${vscode.l10n.t('Browse for a model folder…')}`, use: undefined };
  const items = services.runs
    .list()
    .filter((ref) => STAGE_INFO[ref.record.stage].generates)
    .flatMap((ref) => {
      const use = runModel(ref);
      return use
        ? [
            {
              label: runTitle(ref.record),
              description: `${stageLabel(ref.record.stage)} · ${new Date(ref.record.created).toLocaleString()} · ${path.basename(use.model)}`,
              detail: ref.record.id,
              use,
            },
          ]
        : [];
    });
  const chosen = await vscode.window.showQuickPick([...items, browse], { placeHolder });
  if (!chosen) return undefined;
  if (chosen.use) return chosen.use;
  const folders = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    openLabel: vscode.l10n.t('Use this model'),
    title: vscode.l10n.t('A checkpoint folder (config.json + model.safetensors)'),
  });
  const folder = folders?.[0]?.fsPath;
  return folder ? { model: folder, name: path.basename(folder) } : undefined;
}

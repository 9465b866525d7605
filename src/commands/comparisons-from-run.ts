/**
 * Generate More Comparisons from a Run's Model: the comparisons stage sampling from a model picked
 * among the workspace's runs (SFT, DPO, PPO, GRPO, RLOO) in place of comparisons.model, so label →
 * train → generate → label again goes round from the Labeling view. The new pairs carry the run's
 * name as their "source", which the view shows beside them.
 */
import * as vscode from 'vscode';
import { Services } from '../services';
import { pickModel } from './generation';
import { startStage } from './training';
import { requireTrust } from './common';

export function registerComparisonsFromRun(services: Services): vscode.Disposable {
  return vscode.commands.registerCommand('rlhf.generateComparisonsFromRun', (uri?: vscode.Uri) =>
    generateFromRun(services, uri),
  );
}

async function generateFromRun(services: Services, uri?: vscode.Uri): Promise<void> {
  if (!(await requireTrust(vscode.l10n.t('Generating comparisons')))) return;
  const picked = await pickModel(services, vscode.l10n.t('Model to sample new comparisons from'));
  if (picked) await startStage(services, 'comparisons', uri, false, { model: picked.model, source: picked.name });
}

/**
 * A checkpoint folder's layout on disk, without the model code: which files make a model folder,
 * where a save in progress lives, and whether a checkpoint is complete. The extension host reads
 * checkpoints through this file only.
 *
 * A checkpoint is one model folder, or (for a stage that trains several models at once, as PPO's
 * policy and value model) a folder holding one model folder per model, named after it.
 */
import * as fs from 'fs';
import * as path from 'path';

export const CHECKPOINT_FILES = {
  config: 'config.json',
  model: 'model.safetensors',
  trainerState: 'trainer_state.json',
  optimizer: 'optimizer.safetensors',
};

/** What a model folder needs to load. */
const REQUIRED = [CHECKPOINT_FILES.config, CHECKPOINT_FILES.model];

/** A save writes "<dir>.partial", then parks the folder it replaces as "<dir>.previous" while it swaps. */
export function sidePaths(dir: string): { partial: string; previous: string } {
  return { partial: `${dir}.partial`, previous: `${dir}.previous` };
}

/**
 * Why the checkpoint at `dir` cannot be loaded whole, or undefined when it can. `models` names its
 * model subfolders; none: `dir` itself is the model folder. A model folder beside its own
 * "<name>.partial" is what a kill during a save of older versions left, which wrote each model
 * apart.
 */
export function incompleteCheckpoint(dir: string, models: readonly string[]): string | undefined {
  if (!isDirectory(dir)) return fs.existsSync(dir) ? 'it is not a folder' : 'it does not exist';
  for (const folder of models.length ? models.map((m) => path.join(dir, m)) : [dir]) {
    const missing = REQUIRED.filter((file) => !fs.existsSync(path.join(folder, file)));
    if (!missing.length) continue;
    const what = (folder === dir ? '' : `${path.basename(folder)}/`) + missing.join(' and ');
    const cutOff = fs.existsSync(sidePaths(folder).partial)
      ? `, and ${path.basename(folder)}.partial is a cut-off save`
      : '';
    return `it has no ${what}${cutOff}`;
  }
  return undefined;
}

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

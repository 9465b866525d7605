/**
 * A checkpoint folder's layout on disk, without the model code: which files make a model folder,
 * how a save replaces a folder whole (where a save in progress lives, how it is swapped in and
 * recovered after a crash), and whether a checkpoint is complete. The extension host reads
 * checkpoints through this file only.
 *
 * A checkpoint is one model folder, or (for a stage that trains several models at once, as PPO's
 * policy and value model) a folder holding one model folder per model, named after it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { syncDir } from '../util/files';

export const CHECKPOINT_FILES = {
  config: 'config.json',
  model: 'model.safetensors',
  /** In place of model.safetensors: which shard file holds each tensor (a large model's weights). */
  modelIndex: 'model.safetensors.index.json',
  generationConfig: 'generation_config.json',
  trainerState: 'trainer_state.json',
  optimizer: 'optimizer.safetensors',
};

/** A PEFT adapter folder's files (./adapter-files.ts), in place of config.json and the weights. */
export const ADAPTER_FILES = { config: 'adapter_config.json', model: 'adapter_model.safetensors' };

/** The files a model folder lacks to load: its config, and its weights whole or sharded. */
function missingFiles(folder: string): string[] {
  const has = (file: string) => fs.existsSync(path.join(folder, file));
  const { config, model, modelIndex } = CHECKPOINT_FILES;
  if (has(ADAPTER_FILES.config)) return has(ADAPTER_FILES.model) ? [] : [ADAPTER_FILES.model];
  return [...(has(config) ? [] : [config]), ...(has(model) || has(modelIndex) ? [] : [model])];
}

/** What a model folder holds, for messages. */
export const MODEL_FOLDER = `a model folder holds ${CHECKPOINT_FILES.config} and ${CHECKPOINT_FILES.model} or ${CHECKPOINT_FILES.modelIndex} with its shards, or is a PEFT adapter folder (${ADAPTER_FILES.config} and ${ADAPTER_FILES.model})`;

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
    const missing = missingFiles(folder);
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

/** Thrown by loadCheckpoint (./checkpoint.ts) when nothing is at the path (nor a save of it that was cut off). */
export class NoCheckpointError extends Error {}

/** Writes `dir` whole: `write` fills "<dir>.partial", which is then swapped in. */
export function saveFolder(dir: string, models: string[], write: (partial: string) => void): void {
  recoverInterruptedSave(dir);
  refuseToReplaceNonCheckpoint(dir, models);
  const { partial } = sidePaths(dir);
  fs.mkdirSync(partial, { recursive: true });
  write(partial);
  swapIn(partial, dir);
}

/** The swap: park the old checkpoint, rename the new one in, then delete the old. */
function swapIn(partial: string, dir: string): void {
  const { previous } = sidePaths(dir);
  const hadOld = fs.existsSync(dir);
  if (hadOld) fs.renameSync(dir, previous);
  fs.renameSync(partial, dir);
  syncDir(path.dirname(dir));
  if (hadOld) fs.rmSync(previous, { recursive: true, force: true });
}

/**
 * Cleans up after a save that crashed. If `dir` is gone but "<dir>.previous" exists, the crash
 * came between swapIn's renames, when "<dir>.partial" was already complete: finish the swap.
 * Any other leftover partial is incomplete and any leftover previous is superseded.
 */
function recoverInterruptedSave(dir: string): void {
  const { partial, previous } = sidePaths(dir);
  if (!fs.existsSync(dir) && fs.existsSync(previous)) {
    fs.renameSync(fs.existsSync(partial) ? partial : previous, dir);
  }
  fs.rmSync(partial, { recursive: true, force: true });
  fs.rmSync(previous, { recursive: true, force: true });
}

/** Where to read `dir` from, following recoverInterruptedSave's rules without changing the disk. */
export function readableDir(dir: string): string {
  if (fs.existsSync(dir)) {
    if (fs.statSync(dir).isDirectory()) return dir;
    throw new Error(`${dir} is a file, not a model folder (${MODEL_FOLDER})`);
  }
  const { partial, previous } = sidePaths(dir);
  if (fs.existsSync(previous)) return fs.existsSync(partial) ? partial : previous;
  throw new NoCheckpointError(`no checkpoint at ${dir}`);
}

/**
 * A save deletes what was at `dir`; make sure that is an old checkpoint and not someone's files:
 * a model folder, or for several `models`, a folder of nothing but their folders (and their
 * saves cut off).
 */
function refuseToReplaceNonCheckpoint(dir: string, models: string[]): void {
  if (!fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory()) throw new Error(`saveCheckpoint: ${dir} exists and is not a directory`);
  const why = notACheckpoint(fs.readdirSync(dir), models);
  if (why) throw new Error(`saveCheckpoint: ${dir} is not a checkpoint (${why}); refusing to replace it`);
}

/** Why a folder holding `entries` is not a checkpoint of `models`, if it is not. */
function notACheckpoint(entries: string[], models: string[]): string | undefined {
  if (!models.length)
    return entries.length > 0 && !entries.includes(CHECKPOINT_FILES.config) && !entries.includes(ADAPTER_FILES.config)
      ? `no ${CHECKPOINT_FILES.config}`
      : undefined;
  const stranger = entries.find((entry) => !models.includes(entry.replace(/\.(partial|previous)$/, '')));
  return stranger && `it holds "${stranger}"`;
}

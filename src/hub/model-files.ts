/** Which files of a Hub repo make a model this extension loads: its config, weights and tokenizer. */
import * as fs from 'fs';
import * as path from 'path';
import { readWeightMap } from '../model/checkpoint-weights';
import { COMPANION_FILES } from '../model/model-files';

export const CONFIG = 'config.json';
export const WEIGHTS = 'model.safetensors';
export const WEIGHTS_INDEX = 'model.safetensors.index.json';

/** Fetched when the repo has them (the files a saved model carries too); only config.json is required. */
export const METADATA_FILES = [CONFIG, ...COMPANION_FILES];

/** The shard files a model.safetensors.index.json maps tensors to, each once. */
export function shardsOf(indexFile: string): string[] {
  return [...new Set(readWeightMap(indexFile).values())];
}

/**
 * What a model folder lacks to load: config.json and the weights (model.safetensors, or every shard
 * its index names). Empty for a folder that holds a model.
 */
export function missingModelFiles(dir: string): string[] {
  const has = (file: string) => fs.existsSync(path.join(dir, file));
  const missing = has(CONFIG) ? [] : [CONFIG];
  if (has(WEIGHTS_INDEX)) return [...missing, ...shardsOf(path.join(dir, WEIGHTS_INDEX)).filter((s) => !has(s))];
  return has(WEIGHTS) ? missing : [...missing, WEIGHTS];
}

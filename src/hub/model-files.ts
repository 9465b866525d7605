/** Which files of a Hub repo make a model this extension loads: its config, weights and tokenizer. */
import * as fs from 'fs';
import * as path from 'path';
import { COMPANION_FILES } from '../model/model-files';
import { isPlainObject } from '../util/objects';

export const CONFIG = 'config.json';
export const WEIGHTS = 'model.safetensors';
export const WEIGHTS_INDEX = 'model.safetensors.index.json';

/** Fetched when the repo has them (the files a saved model carries too); only config.json is required. */
export const METADATA_FILES = [CONFIG, ...COMPANION_FILES];

/** The shard files a model.safetensors.index.json maps tensors to, each once. */
export function shardsOf(indexFile: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  } catch (e) {
    throw new Error(`${indexFile}: not readable JSON (${(e as Error).message})`);
  }
  const map = isPlainObject(json) ? json.weight_map : undefined;
  if (!isPlainObject(map)) throw new Error(`${indexFile}: "weight_map" must be an object of tensor name → shard file`);
  const shards = new Set<string>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || !shard.endsWith('.safetensors') || !isInsideRepo(shard)) {
      throw new Error(
        `${indexFile}: weight_map."${tensor}" must name a .safetensors file of the repo, got ${JSON.stringify(shard)}`,
      );
    }
    shards.add(shard);
  }
  return [...shards];
}

/** A relative path that stays inside the repo's folder. */
export function isInsideRepo(file: string): boolean {
  return !path.isAbsolute(file) && !file.split(/[\\/]/).some((part) => part === '..' || part === '');
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

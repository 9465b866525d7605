/**
 * The files that come with a model besides its config and weights: its tokenizer and its generation
 * settings. A saved model folder gets copies of its source's, so it loads in transformers as it is;
 * generation_config.json (else config.json, as transformers falls back) says which tokens end a
 * generation.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CHECKPOINT_FILES as FILES } from './checkpoint-layout';
import { writeFileAtomic } from '../util/files';
import { readJsonObjectFile } from '../util/json-files';

/** Tokenizer and generation files transformers reads beside a model, whichever a model has. */
export const COMPANION_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'chat_template.jinja',
  'chat_template.json',
  'vocab.json',
  'merges.txt',
  'tokenizer.model',
  FILES.generationConfig,
];

/** Copies the companion files `from` has into `to`, each durably (a save's folder is swapped in once it is whole). */
export function copyCompanionFiles(from: string, to: string): void {
  for (const file of COMPANION_FILES) {
    const source = path.join(from, file);
    if (fs.existsSync(source)) writeFileAtomic(path.join(to, file), [fs.readFileSync(source)]);
  }
}

/** The special token ids generation uses. */
export interface GenerationConfig {
  /** A generation ends at any of these; empty when the model names none. */
  eosTokenIds: number[];
  bosTokenId?: number;
  padTokenId?: number;
}

/**
 * The token ids of `dir`'s generation_config.json, or when it has none, of its config.json (passed
 * parsed as `modelConfig`). eos_token_id may be one id or a list. Errors name the file and field.
 */
export function readGenerationConfig(dir: string, modelConfig: Record<string, unknown>): GenerationConfig {
  const file = path.join(dir, FILES.generationConfig);
  const own = fs.existsSync(file);
  const [json, where] = own ? [readJsonObjectFile(file), file] : [modelConfig, path.join(dir, FILES.config)];
  const eos = tokenIds(json.eos_token_id, `${where}: eos_token_id`);
  const one = (key: string) => {
    if (Array.isArray(json[key]))
      throw new Error(`${where}: ${key} must be one token id, got ${JSON.stringify(json[key])}`);
    return tokenIds(json[key], `${where}: ${key}`)[0];
  };
  return { eosTokenIds: eos, bosTokenId: one('bos_token_id'), padTokenId: one('pad_token_id') };
}

/** A token id, a list of them, or nothing (absent or null). */
function tokenIds(value: unknown, where: string): number[] {
  if (value === undefined || value === null) return [];
  const ids = Array.isArray(value) ? value : [value];
  if (!ids.every((id) => Number.isSafeInteger(id) && id >= 0)) {
    throw new Error(`${where} must be a token id or a list of token ids, got ${JSON.stringify(value)}`);
  }
  return ids;
}

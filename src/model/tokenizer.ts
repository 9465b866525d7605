/**
 * Text to token ids and back: GPT-2's byte-level BPE (its ranks ship inside js-tiktoken, so nothing
 * is downloaded), or any Hugging Face tokenizer.json.
 *
 * encode() always reads its input as plain text. Special tokens such as EOS are added by the caller,
 * by id, so a literal "<|endoftext|>" typed into a data file stays ordinary characters.
 */
import * as fs from 'fs';
import * as path from 'path';
import { getEncoding } from 'js-tiktoken';
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import { isPlainObject } from '../util/objects';

export interface Tokenizer {
  /** "gpt2", or the path of the tokenizer.json it was loaded from. */
  name: string;
  /** One more than the largest id encode() or the special tokens can produce. */
  vocabSize: number;
  eosId: number;
  padId: number;
  encode(text: string): number[];
  decode(ids: number[]): string;
}

let gpt2: Tokenizer | undefined;

/** GPT-2's tokenizer; built once, as parsing its 50k merges takes a moment. */
export function gpt2Tokenizer(): Tokenizer {
  if (!gpt2) {
    const bpe = getEncoding('gpt2');
    const [eosId] = bpe.encode('<|endoftext|>', ['<|endoftext|>']);
    gpt2 = {
      name: 'gpt2',
      vocabSize: eosId + 1,
      eosId,
      padId: eosId,
      // Nothing allowed and nothing disallowed: special-token text is encoded like any other text.
      encode: (text) => bpe.encode(text, [], []),
      decode: (ids) => bpe.decode(ids),
    };
  }
  return gpt2;
}

/** Token names tried, in order, when tokenizer_config.json does not name an eos_token. */
const EOS_FALLBACKS = ['<|endoftext|>', '</s>', '<eos>'];

/**
 * Loads a Hugging Face tokenizer from a tokenizer.json, or a folder holding one. A
 * tokenizer_config.json beside it, if any, names the EOS and padding tokens.
 */
export function loadHFTokenizer(location: string): Tokenizer {
  const file = isDirectory(location) ? path.join(location, 'tokenizer.json') : location;
  const json = readJsonObject(file);
  const configFile = path.join(path.dirname(file), 'tokenizer_config.json');
  const config = fs.existsSync(configFile) ? readJsonObject(configFile) : {};
  if (!Array.isArray(json.added_tokens)) throw new Error(`${file}: "added_tokens" must be an array`);

  let full: HFTokenizer;
  let plainText: HFTokenizer;
  try {
    full = new HFTokenizer(json, config);
    // A second copy that does not know the special tokens, so encode() cannot produce them from text.
    const ordinaryTokens = json.added_tokens.filter((t) => !(isPlainObject(t) && t.special === true));
    plainText = new HFTokenizer({ ...json, added_tokens: ordinaryTokens }, config);
  } catch (err) {
    throw new Error(`${file}: not a tokenizer this loader can read: ${(err as Error).message}`);
  }

  const eosId = specialTokenId(full, config.eos_token, EOS_FALLBACKS, 'eos_token', file);
  const padId = config.pad_token ? specialTokenId(full, config.pad_token, [], 'pad_token', file) : eosId;
  return {
    name: file,
    vocabSize: largestId(full) + 1,
    eosId,
    padId,
    encode: (text) => plainText.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) => (ids.length > 0 ? full.decode(ids) : ''),
  };
}

/** The id of a token named in tokenizer_config.json (as a string or {content}), else of the first known fallback. */
function specialTokenId(tokenizer: HFTokenizer, named: unknown, fallbacks: string[], key: string, file: string): number {
  const name = isPlainObject(named) ? named.content : named;
  const candidates = typeof name === 'string' ? [name] : fallbacks;
  for (const token of candidates) {
    const id = tokenizer.token_to_id(token);
    if (id !== undefined) return id;
  }
  throw new Error(`${file}: no ${key} found (tried ${candidates.map((c) => JSON.stringify(c)).join(', ')}); ` +
    `name one as "${key}" in tokenizer_config.json beside it`);
}

function largestId(tokenizer: HFTokenizer): number {
  let largest = -1;
  for (const id of tokenizer.get_vocab(true).values()) largest = Math.max(largest, id);
  return largest;
}

function isDirectory(location: string): boolean {
  return fs.existsSync(location) && fs.statSync(location).isDirectory();
}

function readJsonObject(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read tokenizer file: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: invalid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(json)) throw new Error(`${file}: must be a JSON object`);
  return json;
}

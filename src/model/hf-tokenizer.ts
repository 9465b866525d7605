/**
 * A Hugging Face tokenizer from its files, through @huggingface/tokenizers: tokenizer.json (BPE with
 * ByteLevel or Split + ByteLevel pre-tokenizers, merges as strings or pairs, added and special
 * tokens, or any other model the library reads), and beside it:
 *
 *   tokenizer_config.json   eos_token, pad_token, the special tokens' text, chat_template
 *   chat_template.jinja     the chat template (preferred over tokenizer_config.json's, as transformers does)
 *   generation_config.json  eos_token_id, a number or a list: every one finishes a response
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import { readJsonObjectFile } from '../util/json-files';
import { isPlainObject } from '../util/objects';
import { ChatFormat, plainChat } from './chat';
import { ChatTemplateSource, templateChat } from './chat-template';
import { readGenerationConfig } from './model-files';
import { Tokenizer } from './tokenizer';

/** Token names tried, in order, when tokenizer_config.json does not name an eos_token. */
const EOS_FALLBACKS = ['<|endoftext|>', '</s>', '<eos>'];

/** The special tokens' names in tokenizer_config.json, passed to chat templates as transformers does. */
const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'];

/** A model folder's own tokenizer: its tokenizer.json (with the files beside it), or undefined when it has none. */
export function folderTokenizer(folder: string): Tokenizer | undefined {
  const file = path.join(folder, 'tokenizer.json');
  return fs.existsSync(file) ? loadHFTokenizer(file) : undefined;
}

/** Loads a Hugging Face tokenizer from a tokenizer.json, or a folder holding one, with the files beside it. */
export function loadHFTokenizer(location: string): Tokenizer {
  const file = isDirectory(location) ? path.join(location, 'tokenizer.json') : location;
  const dir = path.dirname(file);
  const json = readJsonObjectFile(file);
  const configFile = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(configFile) ? readJsonObjectFile(configFile) : {};
  if (!Array.isArray(json.added_tokens)) throw new Error(`${file}: "added_tokens" must be an array`);

  let full: HFTokenizer;
  let plainText: HFTokenizer;
  try {
    full = new HFTokenizer(json, config);
    // A second copy that does not know the special tokens, so encode() cannot produce them from text.
    const ordinaryTokens = json.added_tokens.filter((t) => !isSpecial(t));
    plainText = new HFTokenizer({ ...json, added_tokens: ordinaryTokens }, config);
  } catch (err) {
    throw new Error(`${file}: not a tokenizer this loader can read: ${(err as Error).message}`);
  }

  const eosId = specialTokenId(full, config.eos_token, EOS_FALLBACKS, 'eos_token', file);
  const encode = (text: string) => plainText.encode(text, { add_special_tokens: false }).ids;
  const template = chatTemplateSource(dir, config, configFile);
  const specials = new Map(json.added_tokens.filter(isSpecial).map((t) => [String(t.content), Number(t.id)]));
  const templateTokens = specialTokenText(config);
  const chat = (variables?: Record<string, unknown>): ChatFormat =>
    template
      ? templateChat({ ...template, specials, encode, variables: templateTokens }, variables)
      : plainChat({ eosId, encode });
  const tokenizer: Tokenizer = {
    name: file,
    vocabSize: largestId(full) + 1,
    eosId,
    padId: config.pad_token ? specialTokenId(full, config.pad_token, [], 'pad_token', file) : eosId,
    bosId: addedPrefix(full),
    stopIds: [],
    encode,
    decode: (ids) => (ids.length > 0 ? full.decode(ids) : ''),
    chat,
  };
  const generationEos = readGenerationConfig(dir, {}).eosTokenIds;
  tokenizer.stopIds = [...new Set([eosId, ...generationEos, ...endOfTurn(tokenizer)])];
  return tokenizer;
}

function isSpecial(token: unknown): token is { id: number; content: string } {
  return isPlainObject(token) && token.special === true;
}

/** The id of a token named in tokenizer_config.json (as a string or {content}), else of the first known fallback. */
function specialTokenId(tokenizer: HFTokenizer, named: unknown, fallbacks: string[], key: string, file: string) {
  const name = tokenText(named);
  const candidates = name !== undefined ? [name] : fallbacks;
  for (const token of candidates) {
    const id = tokenizer.token_to_id(token);
    if (id !== undefined) return id;
  }
  throw new Error(
    `${file}: no ${key} found (tried ${candidates.map((c) => JSON.stringify(c)).join(', ')}); ` +
      `name one as "${key}" in tokenizer_config.json beside it`,
  );
}

/** A token as tokenizer_config.json names it: a string, or an object with "content". */
function tokenText(named: unknown): string | undefined {
  const text = isPlainObject(named) ? named.content : named;
  return typeof text === 'string' ? text : undefined;
}

/** The special tokens' text, as chat templates see it (bos_token, eos_token, ...). */
function specialTokenText(config: Record<string, unknown>): Record<string, unknown> {
  const entries = SPECIAL_TOKEN_KEYS.map((key) => [key, tokenText(config[key])]).filter(([, text]) => text);
  const extra = Array.isArray(config.additional_special_tokens) ? config.additional_special_tokens.map(tokenText) : [];
  return { ...Object.fromEntries(entries), additional_special_tokens: extra.filter((t) => t !== undefined) };
}

/** The id the tokenizer puts before a text (its post-processor's BOS), if any. */
function addedPrefix(tokenizer: HFTokenizer): number | undefined {
  const plain = tokenizer.encode('a', { add_special_tokens: false }).ids;
  const withSpecials = tokenizer.encode('a', { add_special_tokens: true }).ids;
  return withSpecials.length > plain.length && withSpecials[0] !== plain[0] ? withSpecials[0] : undefined;
}

/**
 * The chat template: chat_template.jinja, else tokenizer_config.json's "chat_template" (a string,
 * or a list of {name, template} of which "default" is used); undefined when there is none.
 */
function chatTemplateSource(
  dir: string,
  config: Record<string, unknown>,
  configFile: string,
): Pick<ChatTemplateSource, 'template' | 'where'> | undefined {
  const jinjaFile = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(jinjaFile)) return { template: readText(jinjaFile), where: jinjaFile };
  const where = `${configFile}: chat_template`;
  const named = config.chat_template;
  if (named === undefined || named === null) return undefined;
  if (typeof named === 'string') return { template: named, where };
  const found = Array.isArray(named) ? named.find((t) => isPlainObject(t) && t.name === 'default') : undefined;
  if (isPlainObject(found) && typeof found.template === 'string')
    return { template: found.template, where: `${where} "default"` };
  throw new Error(`${where} must be a template string or a list of {"name", "template"} with one named "default"`);
}

/**
 * The token the chat template closes an assistant turn with (e.g. "<|im_end|>"), which a model
 * trained on the template writes when it is done; none when the template cannot render a short
 * conversation.
 */
function endOfTurn(tokenizer: Tokenizer): number[] {
  let example;
  try {
    example = tokenizer.chat().conversation([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
    ]);
  } catch {
    return [];
  }
  const last = example.lossMask.lastIndexOf(1);
  return last === -1 ? [] : [example.ids[last]];
}

function largestId(tokenizer: HFTokenizer): number {
  let largest = -1;
  for (const id of tokenizer.get_vocab(true).values()) largest = Math.max(largest, id);
  return largest;
}

function isDirectory(location: string): boolean {
  return fs.existsSync(location) && fs.statSync(location).isDirectory();
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read tokenizer file: ${(err as Error).message}`);
  }
}

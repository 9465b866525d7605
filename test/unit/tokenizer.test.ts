import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadHFTokenizer } from '../../src/model/hf-tokenizer';
import { gpt2Tokenizer } from '../../src/model/tokenizer';

test('GPT-2 encodes known strings to the ids GPT-2 uses', () => {
  const tok = gpt2Tokenizer();
  assert.deepEqual(tok.encode('Hello world'), [15496, 995]);
  assert.deepEqual(tok.encode(' A cat eats fish.'), [317, 3797, 25365, 5916, 13]);
  assert.equal(tok.eosId, 50256);
  assert.equal(tok.padId, tok.eosId);
  assert.equal(tok.vocabSize, 50257);
  assert.equal(tok.decode([tok.eosId]), '<|endoftext|>');
});

test('GPT-2 round-trips English, Chinese, emoji and mixed text exactly', () => {
  const tok = gpt2Tokenizer();
  const texts = [
    'The quick brown fox jumps over the lazy dog.\n  Indented, "quoted" & tabbed\t!',
    '你好，世界！强化学习',
    'Emoji: 🙂👍🏽🐼 and a family 👨‍👩‍👧',
    'Mixed 混合 text: 猫吃鱼。A cat eats fish. 🐟 123.45',
  ];
  for (const text of texts) assert.equal(tok.decode(tok.encode(text)), text);
});

test('GPT-2 encodes a literal <|endoftext|> in user text as ordinary text', () => {
  const tok = gpt2Tokenizer();
  const ids = tok.encode('before <|endoftext|> after');
  assert.ok(!ids.includes(tok.eosId));
  assert.equal(tok.decode(ids), 'before <|endoftext|> after');
});

/** A tiny word-level tokenizer.json with one special token, "</s>". */
function writeTinyTokenizer(dir: string, config?: object): string {
  const special = { single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 0, content: '<unk>', ...special }, { id: 1, content: '</s>', ...special }],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: { '<unk>': 0, '</s>': 1, hello: 2, world: 3, '!': 4 }, unk_token: '<unk>' },
  };
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  if (config) fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return path.join(dir, 'tokenizer.json');
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenizer-test-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function tempDir(): string {
  return fs.mkdtempSync(path.join(root, 'case-'));
}

test('loadHFTokenizer reads a tokenizer.json and its config', () => {
  const dir = tempDir();
  const file = writeTinyTokenizer(dir, { eos_token: '</s>', pad_token: '<unk>' });
  const tok = loadHFTokenizer(file);
  assert.equal(tok.name, file);
  assert.deepEqual(tok.encode('hello world !'), [2, 3, 4]);
  assert.equal(tok.decode([2, 3, 4]), 'hello world!');
  assert.equal(tok.decode([]), '');
  assert.equal(tok.eosId, 1);
  assert.equal(tok.padId, 0);
  assert.equal(tok.vocabSize, 5);
  // A special token typed into text stays text.
  assert.ok(!tok.encode('hello </s> world').includes(tok.eosId));
});

test('loadHFTokenizer accepts a folder and finds a conventional EOS without a config', () => {
  const dir = tempDir();
  writeTinyTokenizer(dir);
  const tok = loadHFTokenizer(dir);
  assert.equal(tok.eosId, 1);
  assert.equal(tok.padId, 1);
});

test('loadHFTokenizer names the file it could not use', () => {
  const dir = tempDir();
  const missing = path.join(dir, 'nope', 'tokenizer.json');
  assert.throws(() => loadHFTokenizer(missing), (err: Error) => err.message.startsWith(`${missing}: cannot read`));
  const broken = path.join(dir, 'tokenizer.json');
  fs.writeFileSync(broken, '{"model": ');
  assert.throws(() => loadHFTokenizer(broken), (err: Error) => err.message.startsWith(`${broken}: invalid JSON`));
  writeTinyTokenizer(dir, { eos_token: '<|im_end|>' });
  assert.throws(() => loadHFTokenizer(dir), /no eos_token found \(tried "<\|im_end\|>"\)/);
});

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadHFTokenizer } from '../../src/model/hf-tokenizer';
import { gpt2Tokenizer, sequenceIds } from '../../src/model/tokenizer';
import { QWEN3, QWEN3_DIR, qwen3Folder, specialToken, writeTinyTokenizer } from '../helpers/tokenizers';
import { tempDir } from '../helpers/temp';

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

const root = tempDir('tokenizer-test');

function caseDir(): string {
  return fs.mkdtempSync(path.join(root, 'case-'));
}

test('loadHFTokenizer reads a tokenizer.json and its config', () => {
  const dir = caseDir();
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
  const dir = caseDir();
  writeTinyTokenizer(dir);
  const tok = loadHFTokenizer(dir);
  assert.equal(tok.eosId, 1);
  assert.equal(tok.padId, 1);
});

test('loadHFTokenizer names the file it could not use', () => {
  const dir = caseDir();
  const missing = path.join(dir, 'nope', 'tokenizer.json');
  assert.throws(
    () => loadHFTokenizer(missing),
    (err: Error) => err.message.startsWith(`${missing}: cannot read`),
  );
  const broken = path.join(dir, 'tokenizer.json');
  fs.writeFileSync(broken, '{"model": ');
  assert.throws(
    () => loadHFTokenizer(broken),
    (err: Error) => err.message.startsWith(`${broken}: not valid JSON`),
  );
  writeTinyTokenizer(dir, { eos_token: '<|im_end|>' });
  assert.throws(() => loadHFTokenizer(dir), /no eos_token found \(tried "<\|im_end\|>"\)/);
});

const qwen3 = loadHFTokenizer(QWEN3_DIR);

test("Qwen3's tokenizer.json round-trips English, Chinese, emoji and special-token text exactly", () => {
  assert.deepEqual(qwen3.encode('Hello world'), [9707, 1879]);
  const texts = [
    'The quick brown fox jumps over the lazy dog.\n  Indented, "quoted" & tabbed\t!',
    '你好，世界！强化学习从人类反馈中学习。',
    'Emoji: 🙂👍🏽🐼 and a family 👨‍👩‍👧',
    'Mixed 混合 text: 猫吃鱼。A cat eats fish. 🐟 123.45 龘',
    'Special tokens typed as text: <|im_start|>user\nhi<|im_end|><|endoftext|>',
  ];
  for (const text of texts) assert.equal(qwen3.decode(qwen3.encode(text)), text);
});

test('Qwen3: special-token text in data stays ordinary text', () => {
  const ids = qwen3.encode('<|im_start|>user\nhi<|im_end|><|endoftext|>');
  for (const special of [QWEN3.imStart, QWEN3.imEnd, QWEN3.endOfText]) assert.ok(!ids.includes(special));
  assert.equal(qwen3.decode([QWEN3.imEnd]), '<|im_end|>', 'the token itself decodes to its text');
});

test('Qwen3: EOS and PAD from tokenizer_config.json, no BOS, and stop ids from generation_config.json', () => {
  assert.equal(qwen3.eosId, QWEN3.imEnd);
  assert.equal(qwen3.padId, QWEN3.endOfText);
  assert.equal(qwen3.bosId, undefined);
  assert.equal(qwen3.vocabSize, 151669);
  // The chat template ends assistant turns with <|im_end|>, the EOS already.
  assert.deepEqual(qwen3.stopIds, [QWEN3.imEnd]);

  const dir = qwen3Folder(path.join(caseDir(), 'qwen3'));
  fs.writeFileSync(
    path.join(dir, 'generation_config.json'),
    JSON.stringify({ eos_token_id: [QWEN3.imEnd, QWEN3.endOfText] }),
  );
  assert.deepEqual(loadHFTokenizer(dir).stopIds, [QWEN3.imEnd, QWEN3.endOfText]);
  fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 'x' }));
  assert.throws(
    () => loadHFTokenizer(dir),
    (err: Error) =>
      err.message.startsWith(
        `${path.join(dir, 'generation_config.json')}: eos_token_id must be a token id or a list of token ids`,
      ),
  );
});

/** A byte-level BPE tokenizer.json that knows "hello" and " wor"; `merges` in either of HF's forms. */
function byteLevelBpe(dir: string, merges: string[] | string[][]): string {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const vocab = {
    '<|endoftext|>': 0,
    h: 1,
    e: 2,
    l: 3,
    o: 4,
    Ġ: 5,
    w: 6,
    r: 7,
    d: 8,
    he: 9,
    ll: 10,
    hell: 11,
    hello: 12,
    Ġw: 13,
    or: 14,
    Ġwor: 15,
  };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [specialToken(0, '<|endoftext|>')],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  return dir;
}

test('a BPE tokenizer.json reads its merges as "a b" strings or as pairs alike', () => {
  const strings = ['h e', 'l l', 'he ll', 'hell o', 'Ġ w', 'o r', 'Ġw or'];
  const asStrings = loadHFTokenizer(byteLevelBpe(caseDir(), strings));
  const asPairs = loadHFTokenizer(
    byteLevelBpe(
      caseDir(),
      strings.map((m) => m.split(' ')),
    ),
  );
  for (const tok of [asStrings, asPairs]) {
    assert.deepEqual(tok.encode('hello world'), [12, 15, 3, 8]);
    assert.equal(tok.decode([12, 15, 3, 8]), 'hello world');
    assert.equal(tok.eosId, 0);
  }
});

test('a tokenizer whose post-processor adds BOS starts every plain-text sequence with it', () => {
  const dir = caseDir();
  const bos = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: '<s>', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { '<s>': { id: '<s>', ids: [5], tokens: ['<s>'] } },
  };
  const added = [specialToken(0, '<unk>'), specialToken(1, '</s>'), specialToken(5, '<s>')];
  writeTinyTokenizer(dir, { eos_token: '</s>' }, { post_processor: bos, added_tokens: added });
  const tok = loadHFTokenizer(dir);
  assert.equal(tok.bosId, 5);
  assert.deepEqual(tok.encode('hello world'), [2, 3], 'encode() itself adds nothing');
  assert.deepEqual(sequenceIds(tok, 'hello world'), [5, 2, 3]);
  assert.deepEqual(sequenceIds(gpt2Tokenizer(), 'Hello world'), [15496, 995], 'GPT-2 adds no BOS');
});

/** Decoding generated tokens a few at a time without ever showing half a character. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadHFTokenizer } from '../../src/model/hf-tokenizer';
import { TextStream, decodeWhole, responseText } from '../../src/model/text-stream';
import { Tokenizer, gpt2Tokenizer } from '../../src/model/tokenizer';
import { QWEN3_DIR } from '../helpers/tokenizers';

const gpt2 = gpt2Tokenizer();
const qwen3 = loadHFTokenizer(QWEN3_DIR);

/** Each of `ids` pushed in turn: the text each one completes. */
const pieces = (tok: Tokenizer, ids: number[]) => {
  const stream = new TextStream(tok);
  return ids.map((id) => stream.push(id));
};

test('GPT-2 writes 狗 as two tokens: the stream shows nothing after the first and the whole character after the second', () => {
  const dog = gpt2.encode('狗');
  assert.equal(dog.length, 2);
  assert.equal(gpt2.decode(dog.slice(0, 1)), '\uFFFD', 'decoded alone, half a character is U+FFFD');
  const ids = gpt2.encode('狩猎: 狗吃虫');
  const shown = pieces(gpt2, ids);
  assert.equal(shown.join(''), '狩猎: 狗吃虫');
  assert.ok(shown.every((text) => !text.includes('\uFFFD')));
  assert.deepEqual(pieces(gpt2, dog), ['', '狗']);
});

test('Qwen3 writes 龘 as two tokens: the same holds for a Hugging Face tokenizer', () => {
  const ids = qwen3.encode('龍龘 dragon 🐉!');
  const rare = qwen3.encode('龘');
  assert.equal(rare.length, 2);
  assert.deepEqual(pieces(qwen3, rare), ['', '龘']);
  const shown = pieces(qwen3, ids);
  assert.equal(shown.join(''), '龍龘 dragon 🐉!');
  assert.ok(shown.every((text) => !text.includes('\uFFFD')));
});

test('a response cut off inside a character drops the incomplete tail', () => {
  for (const tok of [gpt2, qwen3]) {
    const ids = tok.encode('吃龘');
    assert.equal(decodeWhole(tok, ids.slice(0, -1)), '吃');
    assert.equal(responseText(tok, ids.slice(0, -1)), '吃');
  }
});

test('bytes that never form a character are left out', () => {
  // The first half of 狗, then a whole character: what a small model may write.
  const ids = [gpt2.encode('狗')[0], ...gpt2.encode('有吃虫')];
  assert.equal(gpt2.decode(ids), '\uFFFD有吃虫');
  assert.equal(decodeWhole(gpt2, ids), '有吃虫');
});

test('responseText drops the stop token that finished a response, whichever of the stop ids it is', () => {
  const qwenStops = { ...qwen3, stopIds: [qwen3.eosId, qwen3.padId] };
  const hello = qwen3.encode('你好');
  assert.equal(responseText(qwenStops, [...hello, qwen3.padId]), '你好');
  assert.equal(responseText(qwenStops, [...hello, qwen3.eosId]), '你好');
  assert.equal(responseText(gpt2, [...gpt2.encode(' A cat'), gpt2.eosId]), ' A cat');
  assert.equal(responseText(gpt2, gpt2.encode(' A cat')), ' A cat', 'an unfinished response keeps all its tokens');
});

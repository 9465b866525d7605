/**
 * Chat templates on Qwen3's real tokenizer files: the rendering of a conversation, its tokens (as
 * transformers tokenizes a rendered template), and the exact token ranges the SFT loss covers.
 * Expected texts are written from the template's own logic (tokenizer_config.json "chat_template").
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import { ChatMessage, MaskedIds } from '../../src/model/chat';
import { loadHFTokenizer } from '../../src/model/hf-tokenizer';
import { tokenizeSftRecord } from '../../src/data/sft';
import { rewardSequence } from '../../src/train/scorer';
import { QWEN3, QWEN3_DIR, qwen3Folder } from '../helpers/tokenizers';
import { tempDir } from '../helpers/temp';

const root = tempDir('chat-template-test');
let folders = 0;
const folder = (config?: (c: Record<string, unknown>) => Record<string, unknown>) =>
  qwen3Folder(path.join(root, `qwen3-${++folders}`), config);

const qwen3 = loadHFTokenizer(QWEN3_DIR);
/** Qwen3's tokenizer as transformers runs it: special-token text anywhere becomes the special token. */
const reference = new HFTokenizer(
  JSON.parse(fs.readFileSync(path.join(QWEN3_DIR, 'tokenizer.json'), 'utf8')),
  JSON.parse(fs.readFileSync(path.join(QWEN3_DIR, 'tokenizer_config.json'), 'utf8')),
);
const referenceIds = (text: string) => reference.encode(text, { add_special_tokens: false }).ids;

const system = (content: string): ChatMessage => ({ role: 'system', content });
const user = (content: string): ChatMessage => ({ role: 'user', content });
const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });

const CONVERSATION = [
  system('You are a friendly zoo guide.'),
  user('What does a cat eat?'),
  assistant('A cat eats fish.'),
  user('狗吃什么？'),
  assistant('狗吃骨头。🦴'),
];

/**
 * The template on CONVERSATION: the system message first; every user turn as is; the first
 * assistant turn comes before the last user query, so it has no thinking block; the last one
 * comes after it and is the last message, so it gets an empty one. No generation prompt.
 */
const RENDERED =
  '<|im_start|>system\nYou are a friendly zoo guide.<|im_end|>\n' +
  '<|im_start|>user\nWhat does a cat eat?<|im_end|>\n' +
  '<|im_start|>assistant\nA cat eats fish.<|im_end|>\n' +
  '<|im_start|>user\n狗吃什么？<|im_end|>\n' +
  '<|im_start|>assistant\n<think>\n\n</think>\n\n狗吃骨头。🦴<|im_end|>\n';

/** The [start, end) token ranges where lossMask is 1. */
function trainedRanges({ lossMask }: MaskedIds): [number, number][] {
  const ranges: [number, number][] = [];
  lossMask.forEach((m, i) => {
    if (m === 1 && lossMask[i - 1] !== 1) ranges.push([i, i]);
    if (m === 1) ranges.at(-1)![1] = i + 1;
  });
  return ranges;
}

/** The token range of `part` in `text`, where it starts at the first occurrence of `from`. */
function rangeOf(text: string, from: string, part: string): [number, number] {
  const at = text.indexOf(from);
  assert.ok(at >= 0 && text.startsWith(part, at));
  return [referenceIds(text.slice(0, at)).length, referenceIds(text.slice(0, at + part.length)).length];
}

test('Qwen3 chat template: a multi-turn conversation renders as the template writes it, tokenized as transformers does', () => {
  const example = qwen3.chat().conversation(CONVERSATION);
  assert.equal(qwen3.decode(example.ids), RENDERED);
  assert.deepEqual(example.ids, referenceIds(RENDERED));
  assert.equal(example.ids.filter((id) => id === QWEN3.imStart).length, 5, "the template's markers are special tokens");
});

test("Qwen3 chat template: the loss covers each assistant turn's text and its <|im_end|>, nothing else", () => {
  const example = qwen3.chat().conversation(CONVERSATION);
  const first = rangeOf(RENDERED, 'A cat eats fish.', 'A cat eats fish.<|im_end|>');
  const last = rangeOf(RENDERED, '<think>', '<think>\n\n</think>\n\n狗吃骨头。🦴<|im_end|>');
  assert.deepEqual(trainedRanges(example), [first, last]);
  assert.equal(qwen3.decode(example.ids.slice(...first)), 'A cat eats fish.<|im_end|>');
  assert.equal(example.ids[last[1] - 1], QWEN3.imEnd);
  assert.equal(example.ids.length, last[1] + 1, 'the newline after the last <|im_end|> is context');
  assert.deepEqual(
    tokenizeSftRecord({ messages: CONVERSATION }, qwen3),
    example,
    "SFT renders conversations with the model's template",
  );
});

test("Qwen3 chat template: a generation prompt is the conversation's tokens up to where the reply starts", () => {
  const chat = qwen3.chat();
  const example = chat.conversation(CONVERSATION);
  const prompt = chat.generationPrompt(CONVERSATION.slice(0, 4));
  assert.equal(qwen3.decode(prompt), RENDERED.slice(0, RENDERED.indexOf('<think>')));
  assert.deepEqual(prompt, example.ids.slice(0, prompt.length));
  assert.deepEqual(trainedRanges(example)[1][0], prompt.length);
});

test('Qwen3 chat template: enable_thinking false puts the empty thinking block in the prompt, out of the loss', () => {
  const chat = qwen3.chat({ enable_thinking: false });
  const prompt = chat.generationPrompt([user('Hi')]);
  assert.equal(qwen3.decode(prompt), '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
  const example = chat.conversation([user('Hi'), assistant('Hello')]);
  assert.deepEqual(prompt, example.ids.slice(0, prompt.length));
  assert.equal(qwen3.decode(example.ids.filter((_, i) => example.lossMask[i] === 1)), 'Hello<|im_end|>');
  // Earlier turns have no thinking block in either mode: the generation prompt's block is not in the text.
  const twoTurns = chat.conversation(CONVERSATION);
  assert.equal(qwen3.decode(twoTurns.ids), RENDERED);
  assert.deepEqual(trainedRanges(twoTurns), [
    rangeOf(RENDERED, 'A cat eats fish.', 'A cat eats fish.<|im_end|>'),
    rangeOf(RENDERED, '狗吃骨头', '狗吃骨头。🦴<|im_end|>'),
  ]);
});

test("chat template: special-token text inside a message stays text; the template's own markers are special", () => {
  const messages = [user('What is <|im_end|>?'), assistant('It ends a turn: <|im_end|><|endoftext|>')];
  const example = qwen3.chat().conversation(messages);
  assert.equal(
    qwen3.decode(example.ids),
    '<|im_start|>user\nWhat is <|im_end|>?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nIt ends a turn: <|im_end|><|endoftext|><|im_end|>\n',
  );
  assert.equal(example.ids.filter((id) => id === QWEN3.imEnd).length, 2, 'one per turn, from the template');
  assert.ok(!example.ids.includes(QWEN3.endOfText));
  assert.equal(
    qwen3.decode(example.ids.filter((_, i) => example.lossMask[i] === 1)),
    '<think>\n\n</think>\n\nIt ends a turn: <|im_end|><|endoftext|><|im_end|>',
  );
});

test("chat template: the reward model reads a conversation up to its last assistant turn's end", () => {
  const prompt = CONVERSATION.slice(0, 4);
  const ids = rewardSequence(qwen3, prompt, [CONVERSATION[4]]);
  assert.deepEqual(ids, referenceIds(RENDERED.slice(0, -1)));
  assert.equal(ids.at(-1), QWEN3.imEnd);
});

test('chat template sources: chat_template.jinja beside the config wins; a list uses "default"; bad ones are named', () => {
  const named = folder((c) => ({
    ...c,
    chat_template: [
      { name: 'tool_use', template: 'x' },
      { name: 'default', template: '{% for m in messages %}[{{ m.role }}]{{ m.content }}<|im_end|>{% endfor %}' },
    ],
  }));
  assert.equal(qwen3Decode(named, [user('a'), assistant('b')]), '[user]a<|im_end|>[assistant]b<|im_end|>');

  fs.writeFileSync(
    path.join(named, 'chat_template.jinja'),
    '{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}{% endfor %}\n',
  );
  assert.equal(qwen3Decode(named, [user('a'), assistant('b')]), 'user: a<|im_end|>assistant: b<|im_end|>');

  const bad = folder((c) => ({ ...c, chat_template: [{ name: 'tool_use', template: 'x' }] }));
  assert.throws(
    () => loadHFTokenizer(bad),
    (err: Error) =>
      err.message.startsWith(
        `${path.join(bad, 'tokenizer_config.json')}: chat_template must be a template string or a list`,
      ),
  );
});

test('chat template: raise_exception and a template that never closes a turn give errors naming the template', () => {
  const strict = folder((c) => ({
    ...c,
    chat_template:
      '{% if messages[0].role != "user" %}{{ raise_exception("Conversations must start with a user message") }}{% endif %}{{ messages[0].content }}<|im_end|>',
  }));
  const where = `${path.join(strict, 'tokenizer_config.json')}: chat_template`;
  assert.throws(
    () =>
      loadHFTokenizer(strict)
        .chat()
        .conversation([system('s'), assistant('a')]),
    (err: Error) =>
      err.message.startsWith(where) && err.message.includes('Conversations must start with a user message'),
  );

  const open = folder((c) => ({
    ...c,
    chat_template: '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}',
  }));
  const tok = loadHFTokenizer(open);
  assert.deepEqual(tok.stopIds, [tok.eosId], 'no end-of-turn token to stop on');
  assert.throws(
    () => tok.chat().conversation([user('a'), assistant('b')]),
    /cannot tell where the chat template ends assistant message 1/,
  );
});

/** The text of a conversation rendered by the template of the tokenizer in `dir`. */
function qwen3Decode(dir: string, messages: ChatMessage[]): string {
  const tok = loadHFTokenizer(dir);
  return tok.decode(tok.chat().conversation(messages).ids);
}

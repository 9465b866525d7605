import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { BatchSampler, TokenExample, makeBatch } from '../../src/data/batch';
import { DataFileError, readJsonl } from '../../src/data/jsonl';
import { loadSft, parseSftRecord, splitTrainEval, tokenizeSftRecord } from '../../src/data/sft';
import { gpt2Tokenizer } from '../../src/model/tokenizer';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../helpers/temp';

const tok = gpt2Tokenizer();
const dir = tempDir('sft-data-test');

function writeFile(name: string, contents: string | Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, contents);
  return file;
}

/** The text of the tokens the loss is taken on, and of the ones it is not. */
function splitByMask({ ids, lossMask }: TokenExample): { trained: string; context: string } {
  return {
    trained: tok.decode(ids.filter((_, i) => lossMask[i] === 1)),
    context: tok.decode(ids.filter((_, i) => lossMask[i] === 0)),
  };
}

test('prompt/completion: loss on the completion and its EOS only', () => {
  const example = tokenizeSftRecord({ prompt: 'What does a cat eat?', completion: ' A cat eats fish.' }, tok);
  assert.equal(example.ids.length, example.lossMask.length);
  assert.equal(example.ids.at(-1), tok.eosId);
  assert.deepEqual(splitByMask(example), {
    trained: ' A cat eats fish.<|endoftext|>',
    context: 'What does a cat eat?',
  });
  assert.deepEqual(example.ids, [...tok.encode('What does a cat eat?'), ...tok.encode(' A cat eats fish.'), tok.eosId]);
});

test('prompt/completion in Chinese', () => {
  const example = tokenizeSftRecord({ prompt: '猫吃什么？', completion: '猫吃鱼。' }, tok);
  assert.deepEqual(splitByMask(example), { trained: '猫吃鱼。<|endoftext|>', context: '猫吃什么？' });
});

test('text: loss on every token', () => {
  const example = tokenizeSftRecord({ text: '熊猫吃竹子。Pandas eat bamboo.' }, tok);
  assert.ok(example.lossMask.every((m) => m === 1));
  assert.equal(tok.decode(example.ids), '熊猫吃竹子。Pandas eat bamboo.<|endoftext|>');
});

test('messages: rendered with the chat template, loss on assistant turns only', () => {
  const messages = [
    { role: 'system' as const, content: 'You are a friendly zoo guide.' },
    { role: 'user' as const, content: 'What does a cat eat?' },
    { role: 'assistant' as const, content: 'A cat eats fish.' },
    { role: 'user' as const, content: '狗吃什么？' },
    { role: 'assistant' as const, content: '狗吃骨头。' },
  ];
  const example = tokenizeSftRecord({ messages }, tok);
  assert.equal(
    tok.decode(example.ids),
    'System: You are a friendly zoo guide.\nUser: What does a cat eat?\nAssistant: A cat eats fish.<|endoftext|>' +
      'User: 狗吃什么？\nAssistant: 狗吃骨头。<|endoftext|>',
  );
  assert.deepEqual(splitByMask(example), {
    trained: ' A cat eats fish.<|endoftext|> 狗吃骨头。<|endoftext|>',
    context:
      'System: You are a friendly zoo guide.\nUser: What does a cat eat?\nAssistant:User: 狗吃什么？\nAssistant:',
  });
  // A generation prompt is the same tokens up to where the reply starts.
  const prompt = tok.chat().generationPrompt(messages.slice(0, 4));
  assert.deepEqual(prompt, example.ids.slice(0, prompt.length));
  assert.equal(example.lossMask[prompt.length], 1);
  assert.equal(example.lossMask[prompt.length - 1], 0);
  assert.deepEqual(tok.chat().conversation(messages), example);
});

test('a good file loads despite a BOM, CRLF line ends, blank lines and no final newline', async () => {
  const file = writeFile(
    'good.jsonl',
    '\uFEFF{"prompt": "Hi", "completion": " Hello."}\r\n\r\n  \n' +
      '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}], "id": 7}\r\n' +
      '{"text": "<|endoftext|> is just text here"}',
  );
  const data = await loadSft(file, tok, 64);
  assert.equal(data.examples.length, 3);
  assert.equal(data.truncated, 0);
  assert.equal(data.dropped, 0);
  const literal = data.examples[2];
  assert.equal(literal.ids.filter((id) => id === tok.eosId).length, 1, 'only the appended EOS is the EOS id');
});

test('bad lines are all reported as file:line with the field at fault', async () => {
  const lines = [
    '{"prompt": "ok", "completion": " fine"}',
    '{"prompt": "x", ',
    '{"prompt": "x"}',
    '{"prompt": 3, "completion": "y"}',
    '{"text": ""}',
    '{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}',
    '{"messages": [{"role": "user", "content": "hi"}]}',
    '[1, 2]',
    '{"question": "?"}',
    '',
    '{"messages": [{"role": "assistant"}]}',
    '{"messages": []}',
    '{"text": "a", "prompt": "b"}',
    '{"text": "cut off',
  ];
  const file = writeFile('bad.jsonl', lines.join('\n'));
  const { records, errors } = readJsonl(file, parseSftRecord);
  assert.deepEqual(
    records.map((r) => r.line),
    [1],
  );
  assert.deepEqual(
    errors.map((e) => [e.line, e.file]),
    [2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14].map((l) => [l, file]),
  );
  const messages = errors.map((e) => e.message);
  assert.match(messages[0], /^invalid JSON: /);
  assert.equal(messages[1], 'field "completion" is missing (it must be a non-empty string)');
  assert.equal(messages[2], 'field "prompt" must be a non-empty string, got number 3');
  assert.equal(messages[3], 'field "text" must be a non-empty string, got an empty string');
  assert.equal(messages[4], 'field "messages[1].role" must be "system", "user" or "assistant", got "bot"');
  assert.equal(
    messages[5],
    'field "messages[0].role" must be "assistant": a conversation ends with the reply to learn, got "user"',
  );
  assert.equal(messages[6], 'line must be a JSON object, got an array');
  assert.match(messages[7], /^record must have one of: "prompt" and "completion", "messages", or "text"$/);
  assert.equal(messages[8], 'field "messages[0].content" is missing (it must be a non-empty string)');
  assert.equal(messages[9], 'field "messages" must be a non-empty array, got an array');
  assert.match(messages[10], /^record mixes formats \("prompt", "text"\)/);
  assert.match(messages[11], /^last line is incomplete \(was the file cut off\?\): invalid JSON/);

  await assert.rejects(
    () => loadSft(file, tok, 64),
    (err: unknown) => {
      assert.ok(err instanceof DataFileError);
      assert.equal(err.errors.length, 12);
      const shown = err.message.split('\n');
      assert.equal(shown[0], '12 bad lines in data:');
      assert.equal(shown[2], `${file}:3: field "completion" is missing (it must be a non-empty string)`);
      assert.equal(shown.at(-1), '... and 2 more');
      return true;
    },
  );
});

test('bytes that are not UTF-8 are reported on their line', () => {
  const file = writeFile(
    'latin1.jsonl',
    Buffer.concat([Buffer.from('{"text": "fine"}\n{"text": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]),
  );
  const { records, errors } = readJsonl(file, parseSftRecord);
  assert.equal(records.length, 1);
  assert.deepEqual(errors, [{ file, line: 2, message: 'not valid UTF-8 text' }]);
});

test('an empty file and a missing file are clear errors', async () => {
  const empty = writeFile('empty.jsonl', '\n\n');
  await assert.rejects(
    () => loadSft(empty, tok, 64),
    (err: Error) => err.message.startsWith(`${empty}: no examples found`),
  );
  const missing = path.join(dir, 'missing.jsonl');
  await assert.rejects(
    () => loadSft(missing, tok, 64),
    (err: Error) => err.message.startsWith(`${missing}: cannot read data file`),
  );
});

test('long examples are cut to the context and counted; ones with nothing left to learn are dropped', async () => {
  const long = 'one two three four five six seven eight nine ten';
  const file = writeFile(
    'long.jsonl',
    [
      JSON.stringify({ text: long }),
      JSON.stringify({ prompt: long, completion: ' eleven' }),
      JSON.stringify({ prompt: 'Count:', completion: ' one' }),
    ].join('\n'),
  );
  const data = await loadSft(file, tok, 4);
  assert.equal(data.truncated, 2);
  assert.equal(data.dropped, 1);
  assert.equal(data.examples.length, 2);
  assert.equal(tok.decode(data.examples[0].ids), 'one two three four five');
  assert.equal(data.examples[0].lossMask.length, 5);
  assert.equal(tok.decode(data.examples[1].ids), 'Count: one<|endoftext|>');
});

test('makeBatch shifts targets and mask by one and right-pads', () => {
  const a: TokenExample = { ids: [10, 11, 12, 13], lossMask: [0, 0, 1, 1] };
  const b: TokenExample = { ids: [20, 21], lossMask: [0, 1] };
  const batch = makeBatch([a, b], 4, 99);
  assert.equal(batch.batch, 2);
  assert.equal(batch.seqLen, 4);
  assert.deepEqual([...batch.tokens], [10, 11, 12, 99, 20, 99, 99, 99]);
  assert.deepEqual([...batch.targets], [11, 12, 13, 99, 21, 99, 99, 99]);
  assert.deepEqual([...batch.lossMask], [0, 1, 1, 0, 1, 0, 0, 0]);
  assert.deepEqual([...batch.attentionMask], [1, 1, 1, 0, 1, 0, 0, 0]);
  assert.deepEqual([...batch.positions], [0, 1, 2, 0, 0, 0, 0, 0]);
  assert.throws(() => makeBatch([a], 2, 99), /does not fit 2 positions/);
});

test('splitTrainEval is a seeded shuffle with at least one eval example', () => {
  const items = Array.from({ length: 20 }, (_, i) => i);
  const first = splitTrainEval(items, 0.1, new Rng(7));
  assert.deepEqual(first, splitTrainEval(items, 0.1, new Rng(7)));
  assert.notDeepEqual(first, splitTrainEval(items, 0.1, new Rng(8)));
  assert.equal(first.evalSet.length, 2);
  assert.deepEqual(
    [...first.trainSet, ...first.evalSet].sort((x, y) => x - y),
    items,
  );
  assert.equal(splitTrainEval([1, 2], 0.01, new Rng(1)).evalSet.length, 1);
  assert.equal(splitTrainEval([1, 2], 0.99, new Rng(1)).trainSet.length, 1);
  assert.equal(splitTrainEval([1], 0.5, new Rng(1)).evalSet.length, 0);
  assert.equal(splitTrainEval(items, 0, new Rng(1)).evalSet.length, 0);
  assert.throws(() => splitTrainEval(items, 1, new Rng(1)), /eval fraction/);
});

test('batches are fixed by (seed, step): each epoch is a permutation and resuming repeats them', () => {
  const items = Array.from({ length: 12 }, (_, i) => i);
  const run = new BatchSampler(items, 4, 42);
  const uninterrupted = [...take(run.batches(), 9)];
  // Three batches make an epoch: each epoch holds every item once, in a new order.
  const epochs = [0, 1, 2].map((e) => uninterrupted.slice(3 * e, 3 * e + 3).flat());
  for (const epoch of epochs)
    assert.deepEqual(
      [...epoch].sort((x, y) => x - y),
      items,
    );
  assert.notDeepEqual(epochs[0], epochs[1]);
  // A fresh sampler, as after a restart, picks up at step 5 with the same batches.
  assert.deepEqual([...take(new BatchSampler(items, 4, 42).batches(5), 4)], uninterrupted.slice(5));
  assert.deepEqual(new BatchSampler(items, 4, 42).batch(7), uninterrupted[7]);
  assert.notDeepEqual([...take(new BatchSampler(items, 4, 43).batches(), 3)], uninterrupted.slice(0, 3));
});

test('a batch larger than the data set spans several epochs', () => {
  const batch = new BatchSampler(['a', 'b', 'c'], 7, 1).batch(0);
  assert.equal(batch.length, 7);
  assert.deepEqual([...batch.slice(0, 3)].sort(), ['a', 'b', 'c']);
});

function* take<T>(items: Iterable<T>, count: number): Generator<T> {
  if (count <= 0) return;
  for (const item of items) {
    yield item;
    if (--count === 0) return;
  }
}

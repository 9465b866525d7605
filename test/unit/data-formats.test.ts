/**
 * The stage data reader (src/data/formats): each format's detection and conversion, JSON arrays,
 * CSV/TSV with a column mapping, local Parquet read by row group, dataset folders laid out as Hub
 * repos, and errors that name the file, the line (or row) and the field.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { DataFileError } from '../../src/data/jsonl';
import { loadSft, SFT_RECORDS, tokenizeSftRecord } from '../../src/data/sft';
import { PREFERENCE_RECORDS, PROMPT_RECORDS } from '../../src/data/formats/kinds';
import { rawRecords } from '../../src/data/formats/files';
import { readDataset } from '../../src/data/formats/read';
import { splitFiles } from '../../src/data/formats/source';
import { loadPreferencePairs, loadPrompts } from '../../src/data/formats/stage-data';
import { loadHFTokenizer } from '../../src/model/hf-tokenizer';
import { gpt2Tokenizer } from '../../src/model/tokenizer';
import { QWEN3_DIR } from '../helpers/tokenizers';
import { tempDir } from '../helpers/temp';

const dir = tempDir('data-formats');
const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
};
const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'data');
const gpt2 = gpt2Tokenizer();
const qwen3 = loadHFTokenizer(QWEN3_DIR);
const qwen3Chat = qwen3.chat({ enable_thinking: false });

const ALPACA = [
  { instruction: 'Give a synonym of "big".', input: '', output: 'Large.' },
  { instruction: 'Translate to French.', input: 'cat', output: 'chat' },
];
const ALPACA_NO_INPUT_PROMPT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\nGive a synonym of "big".\n\n### Response:\n';
const ALPACA_INPUT_PROMPT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\nTranslate to French.\n\n### Input:\ncat\n\n### Response:\n';

test('Alpaca in a JSON array: the Alpaca template without a chat template, the user message with one', async () => {
  const file = write('alpaca.json', JSON.stringify(ALPACA, null, 2));
  const plain = await readDataset(file, SFT_RECORDS);
  assert.deepEqual(
    plain.records.map((r) => r.value),
    [
      { prompt: ALPACA_NO_INPUT_PROMPT, completion: 'Large.' },
      { prompt: ALPACA_INPUT_PROMPT, completion: 'chat' },
    ],
  );
  assert.deepEqual(
    plain.records.map((r) => r.place),
    [
      { file, line: 2 },
      { file, line: 7 },
    ],
  );
  assert.equal(plain.summary, `read 2 records as Alpaca instruction data from ${file}`);
  const chat = await readDataset(file, SFT_RECORDS, { templated: true });
  assert.deepEqual(chat.records[1].value, {
    messages: [
      { role: 'user', content: 'Translate to French.\n\ncat' },
      { role: 'assistant', content: 'chat' },
    ],
  });

  // Through the stage's reader: GPT-2 trains on the output after the template; Qwen3 on its reply turn.
  const gpt2Data = await loadSft(file, gpt2, 512);
  const first = gpt2Data.examples[0];
  assert.equal(gpt2.decode(first.ids), `${ALPACA_NO_INPUT_PROMPT}Large.<|endoftext|>`);
  assert.equal(gpt2.decode(first.ids.filter((_, i) => first.lossMask[i])), 'Large.<|endoftext|>');
  const qwenData = await loadSft(file, qwen3, 512, qwen3Chat);
  const second = qwenData.examples[1];
  assert.deepEqual(second, qwen3Chat.conversation((chat.records[1].value as { messages: never }).messages));
  assert.match(qwen3.decode(second.ids), /^<\|im_start\|>user\nTranslate to French\.\n\ncat<\|im_end\|>/);
});

test('ShareGPT: human/gpt/system become user/assistant/system, rendered by the chat template', async () => {
  const conversations = [
    { from: 'system', value: 'Be brief.' },
    { from: 'human', value: 'Hi' },
    { from: 'gpt', value: 'Hello.' },
  ];
  const file = write('sharegpt.jsonl', `${JSON.stringify({ id: 'x', conversations })}\n`);
  const { records, summary } = await readDataset(file, SFT_RECORDS);
  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello.' },
  ];
  assert.deepEqual(records[0].value, { messages });
  assert.equal(summary, `read 1 record as ShareGPT conversations from ${file}`);
  const example = (await loadSft(file, qwen3, 512, qwen3Chat)).examples[0];
  const trained = qwen3.decode(example.ids.filter((_, i) => example.lossMask[i]));
  assert.equal(trained, 'Hello.<|im_end|>');

  const prompts = await loadPrompts(file);
  assert.deepEqual(prompts.prompts[0].value.prompt, messages.slice(0, 2));

  const bad = write('sharegpt-bad.jsonl', JSON.stringify({ conversations: [{ from: 'bing', value: 'x' }] }));
  await assert.rejects(
    () => loadSft(bad, gpt2, 64),
    (err: Error) => err.message.includes(`${bad}:1: field "conversations[0].from" must be "human", "gpt" or "system"`),
  );
});

test("TRL's conversational prompt-completion trains on the completion only; mixed formats are counted", async () => {
  const prompt = [
    { role: 'user', content: 'Count to two.' },
    { role: 'assistant', content: 'One.' },
    { role: 'user', content: 'Go on.' },
  ];
  const completion = [{ role: 'assistant', content: 'Two.' }];
  const file = write(
    'trl.jsonl',
    [{ prompt, completion }, { text: 'Plain text.' }, { prompt: 'Q:', completion: ' A.' }]
      .map((r) => JSON.stringify(r))
      .join('\n'),
  );
  const data = await loadSft(file, qwen3, 512, qwen3Chat);
  assert.equal(
    data.summary,
    `read 3 records from ${file}: 1 as TRL conversational prompt-completion, ` +
      '1 as TRL language-modeling text, 1 as TRL prompt-completion',
  );
  const example = data.examples[0];
  assert.equal(qwen3.decode(example.ids.filter((_, i) => example.lossMask[i])), 'Two.<|im_end|>');
  const whole = tokenizeSftRecord({ messages: [...prompt, ...completion] } as never, qwen3, qwen3Chat);
  assert.deepEqual(example.ids, whole.ids, 'the same tokens as the whole conversation');
  assert.ok(whole.lossMask.filter(Boolean).length > example.lossMask.filter(Boolean).length);
});

test('preference variants: implicit prompt, Alpaca and ShareGPT with chosen/rejected', async () => {
  const user = { role: 'user', content: 'Name a fruit.' };
  const file = write(
    'prefs.jsonl',
    [
      {
        chosen: [user, { role: 'assistant', content: 'Apple.' }],
        rejected: [user, { role: 'assistant', content: 'Rock.' }],
      },
      { instruction: 'Name a fruit.', input: '', chosen: 'Apple.', rejected: 'Rock.' },
      {
        conversations: [{ from: 'human', value: 'Name a fruit.' }],
        chosen: { from: 'gpt', value: 'Apple.' },
        rejected: { from: 'gpt', value: 'Rock.' },
      },
      { prompt: 'Name a fruit.', chosen: ' Apple.', rejected: ' Rock.', label: 'a' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n'),
  );
  const reply = (content: string) => [{ role: 'assistant', content }];
  const plain = await loadPreferencePairs(file);
  assert.deepEqual(plain.pairs, [
    { prompt: [user], chosen: reply('Apple.'), rejected: reply('Rock.') },
    {
      prompt: ALPACA_NO_INPUT_PROMPT.replace('Give a synonym of "big".', 'Name a fruit.'),
      chosen: 'Apple.',
      rejected: 'Rock.',
    },
    { prompt: [user], chosen: reply('Apple.'), rejected: reply('Rock.') },
    { prompt: 'Name a fruit.', chosen: ' Apple.', rejected: ' Rock.' },
  ]);
  assert.equal(
    plain.summary,
    `read 4 records from ${file}: 1 as TRL conversational preference pairs, 1 as Alpaca preference pairs, ` +
      '1 as ShareGPT preference pairs, 1 as TRL preference pairs',
  );
  const templated = await loadPreferencePairs(file, { templated: true });
  assert.deepEqual(templated.pairs[1], { prompt: [user], chosen: reply('Apple.'), rejected: reply('Rock.') });
});

test("TRL's implicit prompt of texts: where chosen and rejected part; HH-RLHF transcripts at the last turn", async () => {
  const hh = (reply: string) => `\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Sky?\n\nAssistant: ${reply}`;
  const file = write(
    'implicit.jsonl',
    [
      { chosen: 'The sky is blue.', rejected: 'The sky is green.' },
      { chosen: hh('Blue.'), rejected: hh('Bread.') },
      { chosen: 'Same.', rejected: 'Same.' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n'),
  );
  const { records, errors } = await readDataset(file, PREFERENCE_RECORDS);
  assert.deepEqual(
    records.map((r) => r.value),
    [
      { prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' },
      { prompt: hh('').trimEnd(), chosen: ' Blue.', rejected: ' Bread.' },
    ],
  );
  assert.deepEqual(errors, [
    {
      file,
      line: 3,
      message: 'field "prompt" is missing, and "chosen" and "rejected" do not part to leave two replies',
    },
  ]);
});

test("the labeling store's undos and ties are applied as the reward model always read them", async () => {
  const file = write(
    'store.jsonl',
    [
      { id: '1', label: 'a', prompt: 'p', chosen: ' x', rejected: ' y' },
      { id: '2', label: 'tie', prompt: 'p', response_a: ' x', response_b: ' z' },
      { id: '3', label: 'b', prompt: 'q', chosen: ' x', rejected: ' y' },
      { undo: '3' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n'),
  );
  const { pairs, skipped } = await loadPreferencePairs(file);
  assert.deepEqual(pairs, [{ prompt: 'p', chosen: ' x', rejected: ' y' }]);
  assert.equal(skipped, 1);
  assert.equal((await loadPreferencePairs(file, { includeTies: true })).pairs.length, 2);
});

test('prompts from SFT-style records: messages up to the reply, Alpaca instructions', async () => {
  const file = write(
    'prompts.jsonl',
    [
      {
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello.' },
        ],
      },
      { instruction: 'Give a synonym of "big".' },
      { prompt: 'Plain.', completion: ' ignored' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n'),
  );
  const { records } = await readDataset(file, PROMPT_RECORDS);
  assert.deepEqual(
    records.map((r) => r.value),
    [[{ role: 'user', content: 'Hi' }], ALPACA_NO_INPUT_PROMPT, 'Plain.'],
  );
  const templated = await loadPrompts(file, { templated: true });
  assert.deepEqual(templated.prompts[1].value.prompt, [{ role: 'user', content: 'Give a synonym of "big".' }]);
});

test('a columns mapping renames fields; a mapped column that is missing names the line and column', async () => {
  const file = write(
    'qa.jsonl',
    [
      { question: 'Q1', answer: ' A1' },
      { question: 'Q2', reply: ' A2' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n'),
  );
  const columns = { prompt: 'question', completion: 'answer' };
  const { records, errors } = await readDataset(file, SFT_RECORDS, { columns });
  assert.deepEqual(records[0].value, { prompt: 'Q1', completion: ' A1' });
  assert.deepEqual(errors, [
    {
      file,
      line: 2,
      message: 'column "answer" (read as "completion" by "columns") is missing; the record has "question", "reply"',
    },
  ]);
});

test('a record of no known format names file, line, the fields it has and the formats expected', async () => {
  const file = write('odd.jsonl', `{"prompt": "ok", "completion": " fine"}\n{"question": "?", "reply": "!"}\n`);
  await assert.rejects(
    () => loadSft(file, gpt2, 64),
    (err: unknown) => {
      assert.ok(err instanceof DataFileError);
      assert.equal(
        err.errors[0].message,
        'no known format: the record has the fields "question", "reply"; expected ' +
          'ShareGPT {"conversations": [{"from": "human" | "gpt" | "system", "value"}]}; ' +
          'or Alpaca {"instruction", "input", "output"}; ' +
          'or TRL {"prompt", "completion"}, {"messages"} or {"text"} ' +
          '(a "columns" mapping in the stage\'s config renames fields)',
      );
      assert.match(err.message, new RegExp(`^1 bad line in data:\n${escape(file)}:2: no known format`));
      return true;
    },
  );
  const missing = write('alpaca-missing.json', '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c"}\n]');
  await assert.rejects(
    () => loadSft(missing, gpt2, 64),
    new RegExp(`${escape(missing)}:3: field "output" is missing \\(it must be a non-empty string\\)`),
  );
});

test('JSON arrays: each element is placed at its line; a bad element or a cut-off array is named', async () => {
  const file = write('arr.json', '[\n {"text": "a, [b] {c}"},\n 7,\n {"text": "d\\"e"}\n]\n');
  const { records, errors } = await readDataset(file, SFT_RECORDS);
  assert.deepEqual(
    records.map((r) => [r.place.line, r.value]),
    [
      [2, { text: 'a, [b] {c}' }],
      [4, { text: 'd"e' }],
    ],
  );
  assert.deepEqual(errors, [{ file, line: 3, message: 'array element must be a JSON object, got number 7' }]);
  const cut = write('cut.json', '[\n {"text": "a"},\n {"text": "b"');
  assert.deepEqual((await readDataset(cut, SFT_RECORDS)).errors, [
    { file: cut, line: 3, message: 'the JSON array is not closed (was the file cut off?)' },
  ]);
  const comma = write('comma.json', '[{"text": "a"},\n]');
  assert.match((await readDataset(comma, SFT_RECORDS)).errors[0].message, /empty element/);
});

test('CSV and TSV with a column mapping; a malformed CSV row is named by line', async () => {
  const csv = write('qa.csv', 'question,answer\n"What is 1+1, roughly?",Two.\n"Multi\nline?",Yes.\n');
  const columns = { prompt: 'question', completion: 'answer' };
  const { records, summary } = await readDataset(csv, SFT_RECORDS, { columns });
  assert.deepEqual(
    records.map((r) => [r.place.line, r.value]),
    [
      [2, { prompt: 'What is 1+1, roughly?', completion: 'Two.' }],
      [4, { prompt: 'Multi\nline?', completion: 'Yes.' }],
    ],
  );
  assert.equal(summary, `read 2 records as TRL prompt-completion from ${csv}`);
  const tsv = write('p.tsv', 'instruction\tinput\nSay hi.\t\n');
  const sayHi = ALPACA_NO_INPUT_PROMPT.replace('Give a synonym of "big".', 'Say hi.');
  assert.equal((await readDataset(tsv, PROMPT_RECORDS)).records[0].value, sayHi);
  const bad = write('bad.csv', 'prompt,completion\na,b\nc,d,e\n');
  const { errors } = await readDataset(bad, SFT_RECORDS);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].line, 3);
  assert.match(errors[0].message, /^not valid CSV: /);
});

test('Parquet is read one row group at a time; a bad row is named by its row index', async () => {
  const file = path.join(FIXTURES, 'messages.parquet');
  const batches = [];
  for await (const batch of rawRecords(file)) batches.push(batch.records.length);
  assert.deepEqual(batches, [2048, 2048, 904]);
  const { records, errors, summary } = await readDataset(file, SFT_RECORDS);
  assert.equal(records.length, 4999);
  assert.deepEqual(records[4998].value, {
    messages: [
      { role: 'user', content: 'What is 4999 plus 4999?' },
      { role: 'assistant', content: 'It is 9998.' },
    ],
  });
  assert.deepEqual(records[4998].place, { file, row: 4999 });
  assert.deepEqual(errors, [
    {
      file,
      row: 4321,
      message: 'field "messages[1].role" must be "assistant": a conversation ends with the reply to learn, got "user"',
    },
  ]);
  assert.equal(summary, `read 4999 records as TRL conversational messages from ${file}; 1 bad record`);
  await assert.rejects(() => loadSft(file, gpt2, 64), /^Error: 1 bad record in data:\n.*messages\.parquet, row 4321: /);
});

test('a dataset folder: split files found as the Hub lays them out, others named when missing', async () => {
  assert.deepEqual(
    splitFiles([
      'README.md',
      'data/train-00000-of-00002.parquet',
      'data/train-00001-of-00002.parquet',
      'data/test-00000-of-00001.parquet',
    ]),
    ['data/train-00000-of-00002.parquet', 'data/train-00001-of-00002.parquet'],
  );
  assert.deepEqual(splitFiles(['default/train/0000.parquet', 'default/partial-test/0000.parquet'], undefined, 'test'), [
    'default/partial-test/0000.parquet',
  ]);
  assert.deepEqual(splitFiles(['en/train-0.parquet', 'fr/train-0.parquet'], 'fr'), ['fr/train-0.parquet']);
  assert.deepEqual(splitFiles(['train.jsonl', 'test.jsonl']), ['train.jsonl']);
  assert.deepEqual(splitFiles(['data/train_prefs-0.parquet', 'data/test_prefs-0.parquet']), {
    error: 'no files of split "train" in data/ (its splits: test_prefs, train_prefs)',
  });
  assert.deepEqual(splitFiles(['en/train-0.parquet', 'fr/train-0.parquet']), {
    error: 'no data files of split "train" for config "default" (its folders: en, fr; pick one with ?config=NAME)',
  });

  const folder = path.join(dir, 'ultrafeedback');
  fs.mkdirSync(path.join(folder, 'data'), { recursive: true });
  fs.copyFileSync(
    path.join(FIXTURES, 'preferences-train.parquet'),
    path.join(folder, 'data', 'train-00000-of-00001.parquet'),
  );
  fs.copyFileSync(
    path.join(FIXTURES, 'preferences-test.parquet'),
    path.join(folder, 'data', 'test-00000-of-00001.parquet'),
  );
  const train = await loadPreferencePairs(folder);
  assert.equal(train.pairs.length, 6);
  assert.deepEqual(train.pairs[1], {
    prompt: [{ role: 'user', content: 'Name a colour, 1.' }],
    chosen: [{ role: 'assistant', content: 'Blue 1.' }],
    rejected: [{ role: 'assistant', content: 'Seven.' }],
  });
  const test = await loadPreferencePairs(`${folder}?split=test`);
  assert.deepEqual(test.pairs[2], { prompt: 'Say 2.', chosen: ' 2.', rejected: ' no.' });
  assert.match(test.summary, /^read 3 records as TRL preference pairs from .*ultrafeedback\?split=test$/);
  await assert.rejects(
    () => loadPreferencePairs(`${folder}?split=validation`),
    /no files of split "validation" in data\/ \(its splits: test, train\)/,
  );
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * DPO as a user meets it: its data (TRL's standard and conversational forms, HH-RLHF, the labeling
 * store) tokenized and truncated as TRL does, the `rlhf dpo` verb recording its run, and a Llama
 * policy saved where Generate reads it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { PreferencePair } from '../../src/data/preferences';
import { loadPreferencePairs } from '../../src/data/formats/stage-data';
import { parseExperiment } from '../../src/experiment/config';
import { gpt2Tokenizer, promptIds } from '../../src/model/tokenizer';
import { RunRegistry } from '../../src/runs/registry';
import { runDpo } from '../../src/train/dpo';
import { DpoLimits, tokenizeDpoPairs } from '../../src/train/dpo-data';
import { sampleFromCheckpoint } from '../../src/train/samples';
import { GREEDY } from '../../src/train/generate';
import { Rng } from '../../src/util/rng';
import { cli } from '../helpers/processes';
import { tempDir } from '../helpers/temp';

const dir = tempDir('dpo-stage');

const tokenizer = gpt2Tokenizer();
const chat = tokenizer.chat();
const LIMITS: DpoLimits = { maxPromptLength: 512, maxLength: 1024, truncationMode: 'keep_end' };
const scored = (row: { ids: number[]; lossMask: number[] }) => row.ids.filter((_, i) => row.lossMask[i]);

test('DPO data: a text pair is the prompt with BOS-less GPT-2 ids, then each response and its EOS, only the response scored', () => {
  const [pair] = tokenizeDpoPairs(
    [{ prompt: 'What does a cat eat?', chosen: ' Fish.', rejected: ' Rocks.' }],
    tokenizer,
    chat,
    LIMITS,
  ).pairs;
  const prompt = tokenizer.encode('What does a cat eat?');
  assert.deepEqual(pair.prompt.ids, prompt);
  assert.deepEqual(pair.chosen.ids, [...prompt, ...tokenizer.encode(' Fish.'), tokenizer.eosId]);
  assert.deepEqual(scored(pair.chosen), [...tokenizer.encode(' Fish.'), tokenizer.eosId]);
  assert.deepEqual(scored(pair.rejected), [...tokenizer.encode(' Rocks.'), tokenizer.eosId]);
});

test("DPO data: a conversation is rendered by the chat format, the prompt with the assistant's turn opened", () => {
  const prompt = [{ role: 'user' as const, content: 'What does a cat eat?' }];
  const [pair] = tokenizeDpoPairs(
    [{ prompt, chosen: [{ role: 'assistant', content: 'Fish.' }], rejected: [{ role: 'assistant', content: 'No.' }] }],
    tokenizer,
    chat,
    LIMITS,
  ).pairs;
  const opened = promptIds(tokenizer, chat, prompt);
  assert.deepEqual(pair.prompt.ids, opened);
  assert.deepEqual(pair.chosen.ids.slice(0, opened.length), opened);
  assert.deepEqual(scored(pair.chosen), [...tokenizer.encode(' Fish.'), tokenizer.eosId]);
  assert.equal(pair.prompt.text, 'What does a cat eat?');
});

test('DPO data: HH-RLHF transcripts split at their last Assistant turn; labeled ties and skips are left out', async () => {
  const hh = path.join(dir, 'hh.jsonl');
  const opening = '\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: What does a cat eat?\n\nAssistant:';
  fs.writeFileSync(hh, JSON.stringify({ chosen: `${opening} Fish.`, rejected: `${opening} Rocks.` }));
  const { pairs } = await loadPreferencePairs(hh);
  assert.deepEqual(pairs, [{ prompt: opening, chosen: ' Fish.', rejected: ' Rocks.' }]);

  const store = path.join(dir, 'store.jsonl');
  const records = [
    { id: '1', label: 'a', prompt: 'Q', chosen: ' yes', rejected: ' no' },
    { id: '2', label: 'tie', prompt: 'Q', response_a: ' a', response_b: ' b' },
    { id: '3', label: 'skip', prompt: 'Q', response_a: ' a', response_b: ' b' },
  ];
  fs.writeFileSync(store, records.map((r) => JSON.stringify(r)).join('\n'));
  const labeled = await loadPreferencePairs(store);
  assert.deepEqual([labeled.pairs.length, labeled.skipped], [1, 2]);
});

test('DPO data: max_prompt_length keeps the end of the prompt, max_completion_length the start of a response, max_length the end truncation_mode names', () => {
  const pairs: PreferencePair[] = [{ prompt: ' one two three four five six', chosen: ' a b c d', rejected: ' e' }];
  const prompt = tokenizer.encode(' one two three four five six');
  const chosen = [...tokenizer.encode(' a b c d'), tokenizer.eosId];
  const cut = (limits: Partial<DpoLimits>) => tokenizeDpoPairs(pairs, tokenizer, chat, { ...LIMITS, ...limits });

  const short = cut({ maxPromptLength: 2 });
  assert.deepEqual(short.pairs[0].prompt.ids, prompt.slice(-2));
  assert.deepEqual(short.truncated, { prompts: 1, sequences: 0 });
  assert.deepEqual(scored(cut({ maxCompletionLength: 2 }).pairs[0].chosen), chosen.slice(0, 2));
  const end = cut({ maxLength: 7 }).pairs[0].chosen;
  assert.deepEqual(end.ids, [...prompt, ...chosen].slice(-7));
  const start = cut({ maxLength: 8, truncationMode: 'keep_start' }).pairs[0].chosen;
  assert.deepEqual(start.ids, [...prompt, ...chosen].slice(0, 8));
  // A response truncation removes entirely teaches nothing: the pair is left out, and counted.
  assert.deepEqual(cut({ maxLength: 6, truncationMode: 'keep_start' }).leftOut, { same: 0, empty: 0, cut: 1 });
});

const animals = [
  ['cat', 'fish'],
  ['dog', 'meat'],
  ['cow', 'grass'],
  ['bird', 'seeds'],
];

test('DPO on tiny-llama with conversational pairs: the policy saves as LlamaForCausalLM, and Generate reads it', async () => {
  const pairs: PreferencePair[] = animals.flatMap(([a, food]) =>
    animals.map(([, other]) => ({
      prompt: [{ role: 'user' as const, content: `What does a ${a} eat?` }],
      chosen: [{ role: 'assistant' as const, content: `${food}.` }],
      rejected: [{ role: 'assistant' as const, content: `${other} and ${other}.` }],
    })),
  );
  const experiment = parseExperiment(
    {
      seed: 3,
      model: 'tiny-llama',
      model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
      runtime: { provider: 'cpu', threads: 1 },
      dpo: {
        data: path.join(dir, 'unused.jsonl'),
        max_steps: 3,
        per_device_train_batch_size: 4,
        learning_rate: 1e-3,
        eval_fraction: 0.25,
        eval_steps: 3,
      },
    },
    'test',
  );
  const { modelDir } = await runDpo({ experiment, outputDir: path.join(dir, 'llama'), pairs, emit: () => {} });
  const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'));
  assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
  const [answer] = await sampleFromCheckpoint(
    modelDir,
    ['What does a cat eat?'],
    new Rng(0),
    { ...GREEDY, maxNewTokens: 4 },
    { provider: 'cpu', threads: 1 },
  );
  assert.equal(answer.prompt, 'What does a cat eat?');
});

test('CLI: rlhf dpo trains on the labeling store, records a dpo run with its key metric, and reports what it left out', async () => {
  const workspace = fs.mkdtempSync(path.join(dir, 'cli-'));
  const lines = [
    ...animals.flatMap(([a, food]) =>
      animals
        .filter(([, other]) => other !== food)
        .map(([, other], i) => ({
          id: `${a}-${i}`,
          label: 'a',
          prompt: `A ${a} eats`,
          chosen: ` ${food}.`,
          rejected: ` ${other}.`,
        })),
    ),
    { id: 'same', label: 'b', prompt: 'Same?', chosen: ' yes', rejected: ' yes' },
    { id: 'tie', label: 'tie', prompt: 'Tie?', response_a: ' a', response_b: ' b' },
  ];
  fs.writeFileSync(path.join(workspace, 'preferences.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n'));
  const file = path.join(workspace, 'exp.rlhf.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      name: 'dpo-cli',
      seed: 1,
      model: 'tiny',
      model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
      runtime: { provider: 'cpu', threads: 1 },
      dpo: {
        data: 'preferences.jsonl',
        per_device_train_batch_size: 4,
        logging_steps: 1,
        eval_steps: 2,
        eval_fraction: 0.25,
      },
    }),
  );
  const { code, output } = await cli(workspace, 'dpo', file, '--steps', '2').exit;
  assert.equal(code, 0, output);
  assert.match(output, /preferences\.jsonl: 1 of 13 pairs left out: 1 with the same chosen and rejected response/);
  assert.match(output, /preferences\.jsonl: 1 comparison without a winner left out/);
  const runs = new RunRegistry(path.join(workspace, '.rlhf', 'runs'));
  const [run] = runs.list();
  assert.deepEqual([run.stage, run.status, run.step], ['dpo', 'finished', 2]);
  assert.ok(run.metrics['eval_rewards/accuracies'] !== undefined, JSON.stringify(run.metrics));
  assert.ok(runs.modelDir(run.id), 'the policy is saved where Generate and the next stage read it');
});

/** Reward functions in workspace files: bundling, TRL's call shape, checks that name the file and line, reloads. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { saveCheckpoint } from '../../src/model/checkpoint';
import { PRESETS, resizeConfig } from '../../src/model/config';
import { initParams } from '../../src/model/decoder';
import { RewardInputs, Rewards } from '../../src/train/rewards/reward-funcs';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../helpers/temp';

const dir = tempDir('reward-funcs');
const cache = path.join(dir, 'cache');

function write(name: string, lines: string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, lines.join('\n'));
  return file;
}

const inputs: RewardInputs = {
  prompts: ['2 + 2 =', 'Capital of France?', [{ role: 'user', content: 'Say hi' }]],
  completions: [' 4', ' Paris', 'hi there'],
  completionIds: [[604], [6342], [5303, 612]],
  columns: [{ answer: '4' }, { answer: 'Paris' }, { answer: null }],
  trainerState: { global_step: 3 },
};

test('a TypeScript file: each exported function is a reward in declaration order, called as TRL calls it', async () => {
  const helper = write('helper.ts', ['export const strip = (s: string): string => s.trim();']);
  const file = write('rewards.ts', [
    `import { strip } from './${path.basename(helper, '.ts')}';`,
    'type Message = { role: string; content: string };',
    'type Args = { completions: (string | Message[])[]; answer: (string | null)[]; logMetric: (n: string, v: number) => void };',
    'const text = (c: string | Message[]) => (typeof c === "string" ? c : c[0].content);',
    'export function exactMatch({ completions, answer, logMetric }: Args): (number | null)[] {',
    '  logMetric("matched", 1);',
    '  return completions.map((c, i) => (answer[i] === null ? null : strip(text(c)) === answer[i] ? 1 : 0));',
    '}',
    'export default async function ({ completionIds, trainerState }: { completionIds: number[][]; trainerState: { global_step: number } }) {',
    '  return completionIds.map((ids) => ids.length + trainerState.global_step);',
    '}',
  ]);
  const rewards = await Rewards.create([file], [1, 0.5], cache);
  const scores = await rewards.score(inputs);
  assert.deepEqual(scores.names, ['exactMatch', 'rewards']);
  assert.deepEqual(Array.from(scores.perFunc[0]), [1, 1, NaN]);
  assert.deepEqual(Array.from(scores.perFunc[1]), [4, 4, 5]);
  assert.deepEqual(scores.logged, { matched: 1 });
  await assert.rejects(Rewards.create([file], [1], cache), /reward_weights has 1 weights for 2 reward functions/);
});

test('a dataset column some records lack is one entry per completion, null where the record has none', async () => {
  const file = write('columns.js', [
    'export const hint = ({ completions, hint }) => completions.map((_, i) => (hint[i] === null ? null : hint[i].length));',
  ]);
  const rewards = await Rewards.create([file], undefined, cache);
  const scores = await rewards.score({ ...inputs, columns: [{ answer: '4' }, { answer: 'Paris', hint: 'city' }, {}] });
  assert.deepEqual(Array.from(scores.perFunc[0]), [NaN, 4, NaN]);
});

test('a file edited between rollouts is rebuilt, and a syntax error names the file, line and column', async () => {
  const file = write('edited.js', ['export const r = ({ completions }) => completions.map(() => 1);']);
  const rewards = await Rewards.create([file], undefined, cache);
  assert.deepEqual(Array.from((await rewards.score(inputs)).perFunc[0]), [1, 1, 1]);
  fs.writeFileSync(file, 'export const r = ({ completions }) => completions.map(() => 2);');
  fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
  assert.deepEqual(Array.from((await rewards.score(inputs)).perFunc[0]), [2, 2, 2]);
  fs.writeFileSync(file, 'export const r = ({ completions }) => {\n  return completions.map(() => 2;\n};');
  fs.utimesSync(file, new Date(), new Date(Date.now() + 10000));
  await assert.rejects(rewards.score(inputs), (e: Error) => e.message.startsWith(`${file}:2:`));
});

test('a reward function that throws names the file, the line of the throw and the sample it failed on', async () => {
  const file = write('throws.ts', [
    'export function picky({ completions }: { completions: string[] }): number[] {',
    '  return completions.map((c) => {',
    "    if (c.includes('Paris')) throw new Error('no capitals');",
    '    return 1;',
    '  });',
    '}',
  ]);
  const rewards = await Rewards.create([file], undefined, cache);
  await assert.rejects(rewards.score(inputs), (e: Error) => {
    assert.match(e.message, new RegExp(`^${file.replace(/[.]/g, '\\.')}:3:\\d+: no capitals`));
    assert.match(e.message, /picky threw on sample 1 \(prompt "Capital of France\?", completion " Paris"\)/);
    return true;
  });
});

test('a wrong number of rewards, or NaN, stops with the function, its file and line, and the sample', async () => {
  const file = write('bad.mjs', [
    'export const short = ({ completions }) => completions.slice(1).map(() => 0);',
    '',
    'export const nan = ({ completions }) => completions.map((c, i) => (i === 2 ? NaN : 0));',
  ]);
  const rewards = await Rewards.create([file], undefined, cache);
  await assert.rejects(
    rewards.score(inputs),
    new RegExp(`${path.basename(file)}:1: reward function short returned 2 rewards for 3 completions`),
  );
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('slice(1)', 'slice(0)'));
  fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
  await assert.rejects(
    rewards.score(inputs),
    /bad\.mjs:3: reward function nan returned NaN for sample 2 \(prompt "Say hi", completion "hi there"\)/,
  );
});

test('a reward-model checkpoint is one of the rewards, named after its folder, beside a file of functions', async () => {
  const cfg = resizeConfig(PRESETS.tiny, { nLayer: 1, nEmbd: 32, nHead: 2, nPositions: 64 });
  const rm = path.join(dir, 'my-rm');
  saveCheckpoint(rm, { config: cfg, params: initParams(cfg, new Rng(1), 'score') });
  const file = write('one.js', ['export const one = ({ completions }) => completions.map(() => 1);']);
  const rewards = await Rewards.create([rm, file], [0.5, 1], cache, { provider: 'cpu', threads: 1 });
  const scores = await rewards.score(inputs);
  assert.deepEqual(scores.names, ['my-rm', 'one']);
  assert.equal(scores.perFunc[0].length, 3);
  assert.ok(scores.perFunc[0].every(Number.isFinite));
  assert.notEqual(scores.perFunc[0][0], scores.perFunc[0][1], 'each completion is scored on its own');
  await rewards.release();
});

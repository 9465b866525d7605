/**
 * The demo pipeline, shortened (a smaller model, the demo's questions about food and homes only,
 * few steps): PPO, DPO and GRPO each answer more held-out prompts by the judge's rule than the SFT
 * policy they start from, the run folder holds the report, chart and metrics, and nothing it
 * prints or writes holds a broken character (U+FFFD).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadExperiment } from '../../src/experiment/config';
import { RunEvent } from '../../src/protocol/runner';
import { runDemo } from '../../src/train/demo';
import { tempDir } from '../helpers/temp';

const DEMO = path.join(__dirname, '../../media/demo');
const ABOUT_FOOD_AND_HOMES = /eat\?|live\?|吃什么|住在哪里/;

/** The demo file's lines whose prompt is about food or homes, at most `limit` of them. */
function copyLines(dir: string, file: string, limit = Infinity): void {
  const lines = fs
    .readFileSync(path.join(DEMO, file), 'utf8')
    .trim()
    .split('\n')
    .filter((l) => ABOUT_FOOD_AND_HOMES.test((JSON.parse(l) as { prompt: string }).prompt));
  fs.writeFileSync(path.join(dir, file), lines.slice(0, limit).join('\n') + '\n');
}

test('the shortened demo: every RL stage beats SFT on the held-out judge, with whole characters only', async (t) => {
  const dir = tempDir('demo');
  copyLines(dir, 'sft.jsonl');
  copyLines(dir, 'prompts.jsonl', 48);
  copyLines(dir, 'eval.jsonl', 40);
  fs.copyFileSync(path.join(DEMO, 'rewards.ts'), path.join(dir, 'rewards.ts'));
  const demo = JSON.parse(fs.readFileSync(path.join(DEMO, 'experiment.json'), 'utf8'));
  const config = {
    ...demo,
    $schema: undefined,
    model_size: { n_layer: 1, n_embd: 64, n_head: 2, n_positions: 64 },
    sft: { ...demo.sft, learning_rate: 3e-3, max_steps: 200, eval_steps: 200, save_steps: 200, logging_steps: 50 },
    rm: { ...demo.rm, max_steps: 60, eval_steps: 60, save_steps: 60 },
    ppo: { ...demo.ppo, total_episodes: 192, save_steps: 100, sample_steps: 100 },
    dpo: { ...demo.dpo, max_steps: 30, eval_steps: 30, save_steps: 30 },
    grpo: { ...demo.grpo, max_steps: 8, save_steps: 100, sample_steps: 100 },
  };
  fs.writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify(config));
  const experiment = loadExperiment(path.join(dir, 'experiment.json'), dir);

  const events: RunEvent[] = [];
  const outputDir = path.join(dir, 'run');
  const result = await runDemo({
    experiment,
    evalPrompts: path.join(dir, 'eval.jsonl'),
    outputDir,
    emit: (e) => events.push(e),
    klSamples: 1,
  });

  assert.ok(result, 'the demo ran to its end');
  const [sft, ...tuned] = result.evals;
  assert.deepEqual(
    result.evals.map((e) => e.policy),
    ['SFT', 'PPO', 'DPO', 'GRPO'],
  );
  for (const e of result.evals) t.diagnostic(`${e.policy}: ${e.passed}/${e.prompts} by the rule, ${e.correct} correct`);
  assert.equal(sft.kl, 0);
  for (const e of tuned)
    assert.ok(e.passed > sft.passed, `${e.policy}: ${e.passed} answers by the rule, SFT ${sft.passed}`);
  const judge = path.join(outputDir, 'judge');
  for (const file of ['report.md', 'report.json', 'judge.png', 'metrics.jsonl'])
    assert.ok(fs.existsSync(path.join(judge, file)), file);
  assert.equal(fs.readFileSync(path.join(judge, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 4);
  const printed = JSON.stringify(events) + fs.readFileSync(path.join(judge, 'report.md'), 'utf8');
  assert.ok(!printed.includes('\uFFFD'), 'no broken character in the output');
  assert.ok(/[\u4e00-\u9fff]/.test(printed), 'Chinese answers are in the output');
});

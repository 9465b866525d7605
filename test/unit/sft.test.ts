import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadCheckpoint } from '../../src/model/checkpoint';
import { RunEvent } from '../../src/protocol/runner';
import { Experiment, parseExperiment } from '../../src/experiment/config';
import { runSft } from '../../src/train/sft';
import { tempDir } from '../helpers/temp';

const dir = tempDir('sft');
const data = path.join(dir, 'sft.jsonl');
const animals = [
  ['cat', 'fish', '猫', '鱼'],
  ['dog', 'meat', '狗', '肉'],
  ['cow', 'grass', '牛', '草'],
  ['bird', 'seeds', '鸟', '种子'],
];
fs.writeFileSync(
  data,
  animals
    .flatMap(([en, food, zh, zhFood]) => [
      JSON.stringify({ prompt: `What does a ${en} eat?`, completion: ` A ${en} eats ${food}.` }),
      JSON.stringify({ prompt: `${zh}吃什么？`, completion: `${zh}吃${zhFood}。` }),
    ])
    .join('\n'),
);

function experiment(maxSteps: number, samplePrompts: string[] = []): Experiment {
  return parseExperiment(
    {
      seed: 3,
      model: 'tiny',
      model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
      runtime: { provider: 'cpu', threads: 1 },
      sft: {
        data,
        max_steps: maxSteps,
        per_device_train_batch_size: 4,
        learning_rate: 2e-2,
        warmup_steps: 2,
        logging_steps: 1,
        eval_steps: 4,
        save_steps: 4,
        eval_fraction: 0.25,
        sample_prompts: samplePrompts,
      },
    },
    'test',
  );
}

const losses = (run: string) =>
  fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => 'loss' in r)
    .map((r) => [r.step, r.loss]);

test('SFT: the loss falls, and a stopped run resumes to the same loss curve', async () => {
  const straight = path.join(dir, 'straight');
  const shown: RunEvent[] = [];
  await runSft({
    experiment: experiment(16, ['What does a cat eat?']),
    outputDir: straight,
    emit: (e) => e.type === 'samples' && shown.push(e),
  });
  const curve = losses(straight);
  const kept = fs
    .readFileSync(path.join(straight, 'samples.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    kept,
    shown.flatMap((e) => (e.type === 'samples' ? e.rows.map((r) => ({ step: e.step, ...r })) : [])),
    'samples.jsonl keeps the tables shown',
  );
  assert.deepEqual(
    kept.map((r) => r.step),
    [0, 16],
  );
  assert.equal(curve.length, 16);
  assert.ok(curve[15][1] < curve[0][1] * 0.5, `loss ${curve[0][1]} → ${curve[15][1]}`);
  assert.ok(fs.existsSync(path.join(straight, 'checkpoint-4')) && fs.existsSync(path.join(straight, 'model')));

  // Stop after step 6 (as Stop / Ctrl-C would), then resume from the checkpoint that saved.
  const resumed = path.join(dir, 'resumed');
  const stop = new AbortController();
  const events: RunEvent[] = [];
  const first = await runSft({
    experiment: experiment(16),
    outputDir: resumed,
    signal: stop.signal,
    emit: (e) => {
      events.push(e);
      if (e.type === 'progress' && e.step === 6) stop.abort();
    },
  });
  assert.equal(first.stopped, true);
  assert.ok(events.some((e) => e.type === 'done' && e.stopped && e.step === 6));
  assert.equal(loadCheckpoint(first.modelDir).trainerState?.step, 6);
  await runSft({ experiment: experiment(16), outputDir: resumed, resumeFrom: first.modelDir, emit: () => {} });
  const again = losses(resumed);
  assert.deepEqual(
    again.map(([s]) => s),
    curve.map(([s]) => s),
  );
  again.forEach(([step, loss], i) =>
    assert.ok(Math.abs(loss - curve[i][1]) <= 1e-5 * Math.abs(curve[i][1]), `step ${step}: ${loss} vs ${curve[i][1]}`),
  );
});

test('SFT: bad data stops the run with file:line errors before training', async () => {
  const bad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(bad, '{"prompt": "hi", "completion": " there"}\n{"prompt": 3}\nnot json\n');
  const exp = experiment(2);
  exp.sft!.data = bad;
  await assert.rejects(
    runSft({ experiment: exp, outputDir: path.join(dir, 'bad'), emit: () => {} }),
    (e: Error) => /bad\.jsonl:2:/.test(e.message) && /bad\.jsonl:3:/.test(e.message),
  );
  assert.equal(fs.existsSync(path.join(dir, 'bad', 'model')), false);
});

test('SFT: gradient_accumulation_steps takes that many micro-batches per optimizer step', async () => {
  const run = (k: number) => {
    const exp = experiment(4);
    Object.assign(exp.sft!, { gradient_accumulation_steps: k, per_device_train_batch_size: 2, logging_steps: 4 });
    return runSft({ experiment: exp, outputDir: path.join(dir, `accumulate-${k}`), emit: () => {} });
  };
  await run(1);
  await run(3);
  const last = (k: number) =>
    JSON.parse(
      fs
        .readFileSync(path.join(dir, `accumulate-${k}`, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .filter((l) => l.includes('"loss"'))
        .at(-1)!,
    );
  // The epoch counts examples seen: 4 steps × 2 × k of the 6 training examples.
  assert.ok(
    Math.abs(last(1).epoch - 8 / 6) < 1e-9 && Math.abs(last(3).epoch - 24 / 6) < 1e-9,
    `${last(1).epoch} ${last(3).epoch}`,
  );
  assert.notEqual(last(3).loss, last(1).loss);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { gradCheck } from '../../src/engine/gradcheck';
import { loadCheckpoint } from '../../src/model/checkpoint';
import { lastTokenScores } from '../../src/model/reward';
import { RunEvent } from '../../src/protocol/runner';
import { Experiment, loadExperiment, parseExperiment } from '../../src/experiment/config';
import { RewardPair, bradleyTerry, runRm } from '../../src/train/reward';
import { Scorer } from '../../src/train/scorer';
import { Rng } from '../../src/util/rng';
import { MARKER_WORDS, markerPairs } from '../helpers/marker-pairs';
import { tempDir } from '../helpers/temp';

const dir = tempDir('rm');

/** The marker pairs' words and four more. */
const WORDS = [...MARKER_WORDS, 'sky', 'fast', 'slow', 'sun'];

function experiment(rm: Record<string, unknown>): Experiment {
  return parseExperiment(
    {
      seed: 1,
      model: 'tiny',
      model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 },
      runtime: { provider: 'cpu', threads: 1 },
      rm: {
        data: path.join(dir, 'unused.jsonl'),
        per_device_train_batch_size: 16,
        learning_rate: 3e-3,
        warmup_steps: 5,
        logging_steps: 1,
        eval_steps: 20,
        save_steps: 1000,
        ...rm,
      },
    },
    'test',
  );
}

const rows = (run: string) =>
  fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
const lastEval = (run: string) =>
  rows(run)
    .filter((r) => 'eval_accuracy' in r)
    .pop()!;

async function accuracy(scorer: Scorer, pairs: RewardPair[]): Promise<number> {
  const chosen = await scorer.scoreTexts(pairs.map((p) => ({ prompt: p.prompt, response: p.chosen })));
  const rejected = await scorer.scoreTexts(pairs.map((p) => ({ prompt: p.prompt, response: p.rejected })));
  return chosen.filter((c, i) => c > rejected[i]).length / pairs.length;
}

test('the score head read at the last token and the Bradley–Terry loss (margin, tie, centering) pass the gradient check', async () => {
  const rng = new Rng(7);
  const normal = (n: number) => Float64Array.from({ length: n }, () => rng.normal());
  // hidden [4 rows, 3 positions, D=5]; rewards [2, 2] read at flat positions row·3 + last.
  const res = await gradCheck(
    (hidden, weight, bias, margin, last, target) =>
      bradleyTerry(lastTokenScores({ 'score.weight': weight, 'score.bias': bias }, hidden, last), margin, target, 0.3)
        .loss,
    [
      { name: 'hidden', shape: [4, 3, 5], data: normal(60) },
      { name: 'weight', shape: [1, 5], data: normal(5) },
      { name: 'bias', shape: [1], data: normal(1) },
      { name: 'margin', shape: [2], data: Float64Array.of(0.5, 0) },
      { name: 'last', shape: [2, 2], data: Int32Array.of(2, 4, 6, 9), dtype: 'int32' },
      { name: 'target', shape: [2], data: Float64Array.of(1, 0.5), fixed: true },
    ],
  );
  assert.ok(res.maxRelError <= 1e-5, `max relative error ${res.maxRelError}: ${JSON.stringify(res.worst)}`);
});

test('RM: learns a known preference rule (held-out accuracy ≥ 95%), saves a GPT2ForSequenceClassification with its normalisation', async () => {
  const run = path.join(dir, 'rule');
  const { modelDir } = await runRm({
    experiment: experiment({ max_steps: 40, eval_fraction: 0.25 }),
    outputDir: run,
    pairs: markerPairs(320, 5, false, WORDS),
    emit: () => {},
  });
  const evalRow = lastEval(run);
  assert.ok(evalRow.eval_accuracy >= 0.95, `eval_accuracy ${evalRow.eval_accuracy}`);
  for (const key of [
    'loss',
    'accuracy',
    'margin',
    'mean_reward',
    'min_reward',
    'max_reward',
    'grad_norm',
    'learning_rate',
    'epoch',
  ])
    assert.ok(key in rows(run)[0], key);

  const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'));
  assert.deepEqual(config.architectures, ['GPT2ForSequenceClassification']);
  assert.equal(config.num_labels, 1);
  const ckpt = loadCheckpoint(modelDir);
  assert.equal(ckpt.head, 'score');
  assert.deepEqual(ckpt.params.get('score.weight')?.shape, [1, 32]);
  assert.ok(!ckpt.params.has('lm_head.weight') && !ckpt.params.has('score.bias'));
  assert.deepEqual(ckpt.trainerState?.reward_normalization, config.reward_normalization);

  // Fresh pairs from another seed, scored through the saved checkpoint.
  const scorer = await Scorer.load(modelDir, { provider: 'cpu', threads: 1 });
  const fresh = await accuracy(scorer, markerPairs(100, 99, false, WORDS));
  assert.ok(fresh >= 0.95, `accuracy on fresh pairs ${fresh}`);

  // The pick of the last real token: a sequence scores the same alone as padded in a batch.
  const seqs = [
    [464, 3797, 318, 13, 50256],
    [464, 3797, 318, 257, 1310, 3290, 6729, 13, 50256],
    [40, 50256],
  ];
  const alone = await Promise.all(seqs.map(async (s) => (await scorer.scoreIds([s]))[0]));
  const together = await scorer.scoreIds(seqs);
  together.forEach((r, i) =>
    assert.ok(
      Math.abs(r - alone[i]) <= 1e-5 * Math.max(1, Math.abs(alone[i])),
      `row ${i}: ${r} in a batch, ${alone[i]} alone`,
    ),
  );
  assert.ok(new Set(alone).size === 3);
  await scorer.release();
});

test('RM: with shuffled labels held-out accuracy stays near chance', async () => {
  // 80 held-out pairs with coin-flip labels: accuracy ~ Binomial(80, 1/2)/80, sd 0.056; [0.3, 0.7] is ±3.6 sd.
  // Seeds are fixed, so the outcome is the same on every run.
  const run = path.join(dir, 'shuffled');
  await runRm({
    experiment: experiment({ max_steps: 40, eval_fraction: 0.25 }),
    outputDir: run,
    pairs: markerPairs(320, 5, true, WORDS),
    emit: () => {},
  });
  const { eval_accuracy } = lastEval(run);
  assert.ok(eval_accuracy >= 0.3 && eval_accuracy <= 0.7, `eval_accuracy ${eval_accuracy}`);
});

test('RM from a preference file: a stopped run resumes to the same loss curve; scores are normalised to mean 0, std 1 on the reference texts', async () => {
  const pairs = markerPairs(48, 3, false, WORDS);
  const data = path.join(dir, 'prefs.jsonl');
  const tie = { id: 't1', label: 'tie', prompt: 'Tell me about the cat.', response_a: ' sun', response_b: ' sky' };
  fs.writeFileSync(data, [...pairs, tie].map((p) => JSON.stringify(p)).join('\n') + '\n');
  const configFile = path.join(dir, 'exp.json');
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      ...experiment({}),
      rm: {
        data: 'prefs.jsonl',
        max_steps: 12,
        per_device_train_batch_size: 8,
        learning_rate: 3e-3,
        warmup_steps: 2,
        logging_steps: 1,
        save_steps: 5,
        eval_fraction: 0,
        center_rewards_coefficient: 0.01,
      },
    }),
  );
  const exp = () => loadExperiment(configFile, dir);
  assert.equal(exp().rm?.data, data);

  const straight = path.join(dir, 'straight');
  const events: RunEvent[] = [];
  await runRm({ experiment: exp(), outputDir: straight, emit: (e) => events.push(e) });
  assert.ok(events.some((e) => e.type === 'log' && /1 comparison without a winner left out/.test(e.message)));
  const curve = rows(straight).map((r) => [r.step, r.loss]);
  assert.equal(curve.length, 12);

  const resumed = path.join(dir, 'resumed');
  const stop = new AbortController();
  const first = await runRm({
    experiment: exp(),
    outputDir: resumed,
    signal: stop.signal,
    emit: (e) => {
      if (e.type === 'progress' && e.step === 7) stop.abort();
    },
  });
  assert.equal(first.stopped, true);
  assert.equal(loadCheckpoint(first.modelDir).trainerState?.step, 7);
  assert.equal(loadCheckpoint(first.modelDir).config.hfExtra?.reward_normalization, undefined);
  const second = await runRm({ experiment: exp(), outputDir: resumed, resumeFrom: first.modelDir, emit: () => {} });
  const again = rows(resumed).map((r) => [r.step, r.loss]);
  assert.deepEqual(
    again.map(([s]) => s),
    curve.map(([s]) => s),
  );
  again.forEach(([step, loss], i) =>
    assert.ok(Math.abs(loss - curve[i][1]) <= 1e-5 * Math.abs(curve[i][1]), `step ${step}: ${loss} vs ${curve[i][1]}`),
  );

  // With no SFT data the reference texts are the training responses: here all chosen and rejected.
  const scorer = await Scorer.load(second.modelDir, { provider: 'cpu', threads: 1 });
  const scores = await scorer.scoreTexts(
    pairs.flatMap((p) => [
      { prompt: p.prompt, response: p.chosen },
      { prompt: p.prompt, response: p.rejected },
    ]),
  );
  const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
  const std = Math.sqrt(scores.reduce((a, r) => a + (r - mean) ** 2, 0) / scores.length);
  assert.ok(Math.abs(mean) < 1e-4 && Math.abs(std - 1) < 1e-4, `normalised mean ${mean}, std ${std}`);
  await scorer.release();

  // include_ties: the tie joins the training pairs.
  const withTies = exp();
  Object.assign(withTies.rm!, { include_ties: true, max_steps: 1 });
  const messages: string[] = [];
  await runRm({
    experiment: withTies,
    outputDir: path.join(dir, 'ties'),
    emit: (e) => e.type === 'log' && messages.push(e.message),
  });
  assert.ok(
    messages.some((m) => /reward model on 49 pairs/.test(m)),
    messages.join('\n'),
  );
});

test('RM: a non-finite loss stops the run with a clear message', async () => {
  const pairs = markerPairs(8, 4, false, WORDS).map((p) => ({ ...p, margin: NaN }));
  await assert.rejects(
    runRm({
      experiment: experiment({ max_steps: 3, eval_fraction: 0 }),
      outputDir: path.join(dir, 'nan'),
      pairs,
      emit: () => {},
    }),
    /reward model diverged at step 1 \(loss NaN, grad_norm NaN\)/,
  );
});

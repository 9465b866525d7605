/**
 * GRPO's and RLOO's advantages and losses on one fixed rollout, against an independent PyTorch
 * re-implementation of TRL's math (bench/reference/grpo_torch.py), and the loss graphs' gradients.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import { gradCheck } from '../../src/engine/gradcheck';
import { toOnnx } from '../../src/engine/onnx';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { Tensor, input } from '../../src/engine/tensor';
import { parseExperiment } from '../../src/experiment/config';
import { grpoAdvantages, weightedRewards } from '../../src/train/group-advantages';
import { Completion } from '../../src/train/group-batches';
import { LossType, grpoLoss, rlooLoss } from '../../src/train/group-losses';
import { computeAdvantages } from '../../src/train/group-rl';
import { Rng } from '../../src/util/rng';

const torchAvailable = (() => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const needsTorch = {
  skip: torchAvailable ? false : 'PyTorch is not installed (apt-get install python3-torch libopenblas0-pthread)',
};

/** A fixed rollout: 2 prompts × 4 completions of up to 6 tokens; one completion cut off (masked out). */
const B = 8,
  T = 6,
  G = 4;
const rng = new Rng(7);
const rnd = (n: number, scale: number, shift = 0) => Array.from({ length: n }, () => shift + rng.normal() * scale);
const lengths = [6, 3, 5, 1, 4, 6, 2, 6];
const mask = lengths.flatMap((l, row) => Array.from({ length: T }, (_, t) => (t < l && row !== 5 ? 1 : 0)));
const logprobs = rnd(B * T, 0.8, -1.5);
// Old log-probs up to ±0.4 away: some ratios leave the clip range on each side.
const oldLogprobs = logprobs.map((x) => x + rng.normal() * 0.25);
const refLogprobs = logprobs.map((x) => x + rng.normal() * 0.3);
/** Two reward functions; the second gives none (null) for the second prompt, whose rewards are then all equal. */
const rewardsPerFunc = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => (i < 4 ? [i % 3, 0.5 * i - 1] : [1, null]));
const weights = [1, 0.5];
const settings = { epsilon: 0.2, epsilonHigh: 0.28, beta: 0.04, maxCompletionLength: T };
const numItems = lengths.reduce((a, b) => a + b, 0);
const gradAccum = 2;

const rows2d = (flat: number[]) => Array.from({ length: B }, (_, r) => flat.slice(r * T, (r + 1) * T));

type Stats = Record<string, number>;
interface Reference {
  rewards: number[];
  grpo: Record<string, { advantages: number[]; frac_reward_zero_std: number; losses: Record<string, Stats> }>;
  rloo: Record<string, { advantages: number[]; stats: Stats }>;
}

function reference(): Reference {
  const stdin = JSON.stringify({
    num_generations: G,
    rewards_per_func: rewardsPerFunc,
    reward_weights: weights,
    logprobs: rows2d(logprobs),
    old_logprobs: rows2d(oldLogprobs),
    ref_logprobs: rows2d(refLogprobs),
    mask: rows2d(mask),
    epsilon: settings.epsilon,
    epsilon_high: settings.epsilonHigh,
    beta: settings.beta,
    max_completion_length: T,
    num_items_in_batch: numItems,
    grad_accum: gradAccum,
  });
  return JSON.parse(execFileSync('/usr/bin/python3', ['bench/reference/grpo_torch.py'], { input: stdin }).toString());
}

const perFunc = weights.map((_, f) => Float64Array.from(rewardsPerFunc, (r) => r[f] ?? NaN));

function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 1e-6) {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < got.length; i++)
    assert.ok(
      Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])),
      `${what}[${i}]: ${got[i]} vs ${want[i]}`,
    );
}

/** Runs a loss builder on the fixed rollout in float64 and returns its outputs. */
async function evaluate(build: (x: Record<string, Tensor>) => Record<string, Tensor>, advantages: ArrayLike<number>) {
  const x = {
    logprobs: input('logprobs', 'float64', [B, T]),
    old: input('old', 'float64', [B, T]),
    ref: input('ref', 'float64', [B, T]),
    mask: input('mask', 'float64', [B, T]),
    advantages: input('advantages', 'float64', [B]),
    normalizer: input('normalizer', 'float64', []),
    oldLogps: input('old_logps', 'float64', [B]),
  };
  const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });
  const program = await runtime.load(toOnnx(build(x)));
  const f64 = (name: string, data: ArrayLike<number>, dims: number[]) =>
    hostTensor('float64', Float64Array.from(data), dims);
  const oldLogps = rows2d(oldLogprobs).map((r, i) => r.reduce((a, v, t) => a + v * mask[i * T + t], 0));
  const all = {
    logprobs: f64('logprobs', logprobs, [B, T]),
    old: f64('old', oldLogprobs, [B, T]),
    ref: f64('ref', refLogprobs, [B, T]),
    mask: f64('mask', mask, [B, T]),
    advantages: f64('advantages', advantages, [B]),
    normalizer: f64('normalizer', [numItems / gradAccum], []),
    old_logps: f64('old_logps', oldLogps, [B]),
  };
  const names = new Set(program.model.inputs.map((i) => i.name));
  const out = await program.run(Object.fromEntries(Object.entries(all).filter(([k]) => names.has(k))));
  await program.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Number(v.data[0])]));
}

test(
  'GRPO advantages and losses match PyTorch (TRL math) for every scale_rewards and loss_type',
  needsTorch,
  async () => {
    const want = reference();
    close(weightedRewards(perFunc, weights), want.rewards, 'rewards');
    for (const scale of ['group', 'batch', 'none'] as const) {
      const adv = grpoAdvantages(weightedRewards(perFunc, weights), G, scale);
      const w = want.grpo[scale];
      close(adv.advantages, w.advantages, `advantages (${scale})`);
      assert.equal(adv.zeroStd.filter(Boolean).length / B, w.frac_reward_zero_std);
      for (const lossType of ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as LossType[]) {
        const got = await evaluate((x) => {
          const { loss, metrics } = grpoLoss(
            {
              logprobs: x.logprobs,
              oldLogprobs: x.old,
              refLogprobs: x.ref,
              advantages: x.advantages,
              mask: x.mask,
              normalizer: x.normalizer,
            },
            { ...settings, lossType },
          );
          return { loss, ...metrics };
        }, adv.advantages);
        for (const key of ['loss', 'kl', 'clip_ratio/low_mean', 'clip_ratio/high_mean', 'clip_ratio/region_mean'])
          close([got[key]], [w.losses[lossType][key]], `${scale} ${lossType} ${key}`);
      }
    }
  },
);

test(
  'RLOO advantages (KL in the reward) and the sequence-level loss match PyTorch (TRL math)',
  needsTorch,
  async () => {
    const want = reference();
    const completions: Completion[] = lengths.map((l, i) => ({
      prompt: [1],
      response: Array(l).fill(0),
      finished: i !== 5,
      counted: i !== 5,
      advantage: 0,
      logprobs: Float32Array.from(oldLogprobs.slice(i * T, i * T + l)),
      refLogprobs: Float32Array.from(refLogprobs.slice(i * T, i * T + l)),
    }));
    for (const normalize of [false, true]) {
      const exp = parseExperiment(
        {
          rloo: {
            prompts: 'p.jsonl',
            reward_funcs: ['r.ts'],
            num_generations: G,
            beta: settings.beta,
            normalize_advantages: normalize,
            per_device_train_batch_size: B,
          },
        },
        'test',
      );
      const scores = { perFunc, names: ['a', 'b'], weights, logged: {} };
      const { advantages } = computeAdvantages('rloo', exp.rloo!, completions, scores);
      const w = want.rloo[String(normalize)];
      // The rollout's log-probs are float32 on the host, as in a run.
      close(advantages.advantages, w.advantages, `advantages (normalize ${normalize})`, 1e-5);
      const got = await evaluate((x) => {
        const { loss, metrics } = rlooLoss(
          { logprobs: x.logprobs, oldLogps: x.oldLogps, advantages: x.advantages, mask: x.mask },
          settings,
        );
        return { loss, ...metrics };
      }, w.advantages);
      for (const key of ['loss', 'clip_ratio/low_mean', 'clip_ratio/high_mean', 'clip_ratio/region_mean'])
        close([got[key]], [w.stats[key]], `rloo ${key}`);
    }
  },
);

test('gradients of the GRPO losses (each loss_type, with KL) and the RLOO loss pass the finite-difference check', async () => {
  const r = new Rng(3);
  const b = 2,
    t = 3;
  const data = (n: number, s: number, shift = 0) => Float64Array.from({ length: n }, () => shift + r.normal() * s);
  const lp = data(b * t, 0.5, -1);
  const fixed = (name: string, shape: number[], d: Float64Array) => ({ name, shape, data: d, fixed: true });
  const old = fixed(
    'old',
    [b, t],
    lp.map((x, i) => x + (i % 2 ? 0.05 : 0.4)),
  );
  const ref = fixed('ref', [b, t], data(b * t, 0.5, -1));
  const m = fixed('mask', [b, t], Float64Array.from([1, 1, 0, 1, 1, 1]));
  const adv = fixed('adv', [b], Float64Array.from([0.7, -1.2]));
  const norm = fixed('norm', [], Float64Array.from([2.5]));
  for (const lossType of ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as LossType[]) {
    const res = await gradCheck(
      (l, o, rf, mk, a, n) =>
        grpoLoss(
          { logprobs: l, oldLogprobs: o, refLogprobs: rf, mask: mk, advantages: a, normalizer: n },
          { ...settings, lossType },
        ).loss,
      [{ name: 'lp', shape: [b, t], data: lp }, old, ref, m, adv, norm],
    );
    assert.ok(res.maxRelError <= 1e-5, `${lossType}: ${JSON.stringify(res)}`);
  }
  const oldLogps = fixed('old_logps', [b], Float64Array.from([-2.1, -3.3]));
  const res = await gradCheck(
    (l, o, mk, a) => rlooLoss({ logprobs: l, oldLogps: o, mask: mk, advantages: a }, settings).loss,
    [{ name: 'lp', shape: [b, t], data: lp }, oldLogps, m, adv],
  );
  assert.ok(res.maxRelError <= 1e-5, `rloo: ${JSON.stringify(res)}`);
});

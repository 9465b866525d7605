import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ops from '../../src/engine/ops';
import { Optimizer, adamw } from '../../src/engine/optim';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { State } from '../../src/engine/state';
import { TrainStep } from '../../src/engine/step';
import { buildTrainGraph } from '../../src/engine/train-graph';
import { input } from '../../src/engine/tensor';
import { Rng } from '../../src/util/rng';
import { makeBatch } from '../../src/data/batch';
import { PRESETS, resizeConfig } from '../../src/model/config';
import { initParams } from '../../src/model/decoder';
import { batchFeeds, sftLossGraph } from '../../src/train/sft';

// Linear regression: loss = mean((X W + b - Y)²), W [D, E] (decays by default), b [E] (does not).
const N = 8,
  D = 3,
  E = 2;
const rng = new Rng(42);
const X = Array.from({ length: N * D }, () => rng.normal());
const Y = Array.from({ length: N * E }, () => rng.normal() + 1);
const W0 = Array.from({ length: D * E }, () => rng.normal());
const b0 = [0.5, -0.25];
/** A schedule: the learning rate changes every step. */
const LRS = [0.05, 0.2, 0.1, 0.3, 0.02, 0.15, 0.25, 0.08];

interface Options {
  weightDecay: number;
  maxGradNorm?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}
interface Snapshot {
  loss: number;
  gradNorm: number;
  clipped: boolean;
  params: Record<string, number[]>;
}

/** Plain TS reference with PyTorch's AdamW and clip_grad_norm_ semantics, in float64. */
function reference(o: Options): Snapshot[] {
  const { weightDecay: wd, beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = o;
  const p: Record<string, number[]> = { W: [...W0], b: [...b0] };
  const m: Record<string, number[]> = { W: W0.map(() => 0), b: b0.map(() => 0) };
  const v: Record<string, number[]> = { W: W0.map(() => 0), b: b0.map(() => 0) };
  const out: Snapshot[] = [];
  LRS.forEach((lr, i) => {
    const t = i + 1;
    const r = Array.from({ length: N * E }, (_, k) => {
      const n = Math.floor(k / E),
        e = k % E;
      let acc = p.b[e] - Y[k];
      for (let d = 0; d < D; d++) acc += X[n * D + d] * p.W[d * E + e];
      return acc;
    });
    const loss = r.reduce((a, x) => a + x * x, 0) / (N * E);
    const dr = r.map((x) => (2 * x) / (N * E));
    const g: Record<string, number[]> = {
      W: Array.from({ length: D * E }, (_, k) => {
        let a = 0;
        for (let n = 0; n < N; n++) a += X[n * D + Math.floor(k / E)] * dr[n * E + (k % E)];
        return a;
      }),
      b: Array.from({ length: E }, (_, e) => {
        let a = 0;
        for (let n = 0; n < N; n++) a += dr[n * E + e];
        return a;
      }),
    };
    const gradNorm = Math.sqrt([...g.W, ...g.b].reduce((a, x) => a + x * x, 0));
    const scale = o.maxGradNorm === undefined ? 1 : Math.min(1, o.maxGradNorm / (gradNorm + 1e-6));
    for (const name of ['W', 'b']) {
      const decays = name === 'W'; // rank ≥ 2
      const bc1 = 1 - beta1 ** t,
        bc2 = 1 - beta2 ** t;
      p[name] = p[name].map((x, k) => {
        const gk = g[name][k] * scale;
        m[name][k] = beta1 * m[name][k] + (1 - beta1) * gk;
        v[name][k] = beta2 * v[name][k] + (1 - beta2) * gk * gk;
        const decayed = decays ? x * (1 - lr * wd) : x;
        const denom = Math.sqrt(v[name][k]) / Math.sqrt(bc2) + eps;
        return decayed - (lr / bc1) * (m[name][k] / denom);
      });
    }
    out.push({
      loss,
      gradNorm,
      clipped: scale < 1,
      params: { W: [...p.W], b: [...p.b], 'exp_avg.W': [...m.W], 'exp_avg_sq.b': [...v.b] },
    });
  });
  return out;
}

/**
 * The same run with the engine: one TrainStep, lr and step fed each step; the update in the
 * step's one graph, or with `updateApart`, run after the gradients.
 */
async function engine(o: Options, dtype: 'float32' | 'float64', updateApart: boolean): Promise<Snapshot[]> {
  const x = input('X', dtype, [N, D]),
    y = input('Y', dtype, [N, E]);
  const w = input('W', dtype, [D, E]),
    b = input('b', dtype, [E]);
  const err = ops.matmul(x, w).add(b).sub(y);
  const graph = buildTrainGraph({
    loss: ops.mean(err.mul(err)),
    params: [w, b],
    optimizer: adamw(o),
    maxGradNorm: o.maxGradNorm,
    updateApart,
  });
  const host = (data: number[], dims: number[]) =>
    hostTensor(dtype, dtype === 'float32' ? Float32Array.from(data) : Float64Array.from(data), dims);
  const state = new State(await Runtime.create({ provider: 'cpu', threads: 1 }));
  state.set('W', host(W0, [D, E]));
  state.set('b', host(b0, [E]));
  const step = await TrainStep.create(graph, state);
  const batch = { X: host(X, [N, D]), Y: host(Y, [N, E]) };
  const out: Snapshot[] = [];
  for (const [i, lr] of LRS.entries()) {
    const s = await step.run(batch, lr, i + 1);
    const read = await state.read(['W', 'b', 'exp_avg.W', 'exp_avg_sq.b']);
    out.push({
      loss: s.loss,
      gradNorm: s.grad_norm,
      clipped: false,
      params: Object.fromEntries([...read].map(([k, v]) => [k, Array.from(v)])),
    });
  }
  await step.release();
  await state.release();
  return out;
}

const cases: [string, Options, 'float32' | 'float64', number][] = [
  ['AdamW without weight decay', { weightDecay: 0 }, 'float32', 1e-6],
  ['AdamW with weight decay (W decays, the bias b does not)', { weightDecay: 0.5 }, 'float32', 1e-6],
  [
    'AdamW + global-norm clipping, custom betas and eps',
    { weightDecay: 0.1, maxGradNorm: 2, beta1: 0.8, beta2: 0.95, eps: 1e-6 },
    'float32',
    1e-6,
  ],
  ['AdamW + global-norm clipping in float64', { weightDecay: 0.1, maxGradNorm: 2 }, 'float64', 1e-12],
];

for (const [name, o, dtype, tol] of cases)
  for (const updateApart of [false, true])
    test(`${name} matches the reference over ${LRS.length} scheduled steps (${dtype}${updateApart ? ', update apart' : ''})`, async () => {
      const want = reference(o),
        got = await engine(o, dtype, updateApart);
      if (o.maxGradNorm !== undefined) {
        // Both branches of the clip are exercised.
        assert.ok(
          want.some((s) => s.clipped) && want.some((s) => !s.clipped),
          `clipped: ${want.map((s) => s.clipped)}`,
        );
      }
      // Relative to the tensor's scale (its largest magnitude), so elements that cross zero are fair.
      const close = (a: number, r: number, scale: number, what: string) =>
        assert.ok(Math.abs(a - r) <= tol * scale, `${what}: ${a} vs ${r}`);
      want.forEach((w, i) => {
        close(got[i].loss, w.loss, w.loss, `loss at step ${i + 1}`);
        close(got[i].gradNorm, w.gradNorm, w.gradNorm, `grad_norm (before clipping) at step ${i + 1}`);
        for (const [k, ref] of Object.entries(w.params)) {
          const scale = Math.max(...ref.map(Math.abs));
          ref.forEach((r, j) => close(got[i].params[k][j], r, scale, `${k}[${j}] after step ${i + 1}`));
        }
      });
    });

/**
 * AdamW written out as the paper and PyTorch state it, each quantity its own tensor: the clipped
 * gradient materialised, the bias corrections applied to m and v, g² squared again. The engine's rearranged update
 * must give the same run.
 */
function plainAdamW(weightDecay: number): Optimizer {
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  return {
    slots: ['exp_avg', 'exp_avg_sq'],
    update(p, g, [m, v], lr, t) {
      const m1 = m.mul(beta1).add(g.mul(1 - beta1));
      const v1 = v.mul(beta2).add(g.mul(g).mul(1 - beta2));
      // 1 - β^t in float64, as PyTorch computes it on the host (in float32 it loses digits for β near 1).
      const correction = (beta: number) => ops.cast(ops.sub(1, ops.pow(beta, ops.cast(t, 'float64'))), t.dtype);
      const mHat = m1.div(correction(beta1));
      const vHat = v1.div(correction(beta2));
      const decayed = p.rank >= 2 ? p.mul(ops.sub(1, lr.mul(weightDecay))) : p;
      return { param: decayed.sub(lr.mul(mHat.div(ops.sqrt(vHat).add(eps)))), slots: [m1, v1] };
    },
  };
}

test('a 20-step SFT loss curve of a tiny GPT-2 is the plain AdamW formulation’s within 1e-5', async () => {
  const cfg = resizeConfig(PRESETS.tiny, { nLayer: 1, vocabSize: 97, nPositions: 16 });
  const rng = new Rng(3);
  const examples = Array.from({ length: 4 }, () => ({
    ids: Array.from({ length: 13 }, () => rng.int(cfg.vocabSize)),
    lossMask: new Array(13).fill(1),
  }));
  const feeds = batchFeeds(makeBatch(examples, 12, 0));
  const curve = async (optimizer: Optimizer) => {
    const g = sftLossGraph(cfg);
    const graph = buildTrainGraph({ loss: g.loss, params: g.params, optimizer, maxGradNorm: 1 });
    const state = new State(await Runtime.create({ provider: 'cpu', threads: 1 }));
    for (const [name, t] of initParams(cfg, new Rng(7))) state.setHost(name, t.data as Float32Array, t.shape);
    const step = await TrainStep.create(graph, state);
    const losses: number[] = [];
    for (let i = 1; i <= 20; i++) losses.push((await step.run(feeds, 3e-3 * Math.min(1, i / 5), i)).loss);
    await step.release();
    await state.release();
    return losses;
  };
  const want = await curve(plainAdamW(0.1)),
    got = await curve(adamw({ weightDecay: 0.1 }));
  assert.ok(want[19] < want[0] - 1, `the loss falls: ${want[0]} → ${want[19]}`);
  got.forEach((l, i) => assert.ok(Math.abs(l - want[i]) <= 1e-5, `step ${i + 1}: ${l} vs ${want[i]}`));
});

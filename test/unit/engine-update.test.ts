import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ops from '../../src/engine/ops';
import { adamw } from '../../src/engine/optim';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { State } from '../../src/engine/state';
import { TrainStep } from '../../src/engine/step';
import { UPDATE_GROUP_BYTES, buildTrainGraph } from '../../src/engine/train-graph';
import { input } from '../../src/engine/tensor';
import { Rng } from '../../src/util/rng';

// loss = mean((W ⊙ X - 1)²) + mean((b - 2)²): dL/dW = 2 X (W ⊙ X - 1) / |W|, dL/db = 2 (b - 2) / |b|.
// W is larger than an update group, so its update runs over ranges of its rows (the last one shorter).
const COLS = 4000;
const ROWS = Math.ceil(UPDATE_GROUP_BYTES / (4 * COLS)) + 51;
const B = 7;

test('a parameter larger than an update group is updated a range of rows at a time, as AdamW over the whole', async () => {
  const w = input('W', 'float32', [ROWS, COLS]),
    b = input('b', 'float32', [B]);
  const x = input('X', 'float32', [ROWS, COLS]);
  const loss = ops.mean(w.mul(x).sub(1).mul(w.mul(x).sub(1))).add(ops.mean(b.sub(2).mul(b.sub(2))));
  const graph = buildTrainGraph({
    loss,
    params: [w, b],
    optimizer: adamw({ weightDecay: 0.1 }),
    maxGradNorm: 0.5,
    updateApart: true,
  });
  assert.deepEqual(
    graph.updates.map((u) => u.rowsOf),
    ['W', undefined],
  );

  const rng = new Rng(3);
  const W0 = Float32Array.from({ length: ROWS * COLS }, () => rng.normal());
  const X = Float32Array.from({ length: ROWS * COLS }, () => rng.normal());
  const b0 = Float32Array.from({ length: B }, () => rng.normal());
  const state = new State(await Runtime.create({ provider: 'cpu' }));
  state.setHost('W', W0.slice(), [ROWS, COLS]);
  state.setHost('b', b0.slice(), [B]);
  const step = await TrainStep.create(graph, state);
  const feeds = { X: hostTensor('float32', X, [ROWS, COLS]) };
  const lrs = [0.01, 0.03];
  for (const [i, lr] of lrs.entries()) await step.run(feeds, lr, i + 1);
  const got = await state.read(['W', 'exp_avg.W', 'exp_avg_sq.W', 'b']);

  // The same two steps in float64, PyTorch's AdamW (decoupled decay on W only) after clip_grad_norm_.
  const p = { W: Float64Array.from(W0), b: Float64Array.from(b0) };
  const m = { W: new Float64Array(W0.length), b: new Float64Array(B) };
  const v = { W: new Float64Array(W0.length), b: new Float64Array(B) };
  for (const [i, lr] of lrs.entries()) {
    const t = i + 1;
    const g = {
      W: p.W.map((wk, k) => (2 * X[k] * (wk * X[k] - 1)) / W0.length),
      b: p.b.map((bk) => (2 * (bk - 2)) / B),
    };
    const norm = Math.sqrt([...g.W, ...g.b].reduce((a, gk) => a + gk * gk, 0));
    const clip = Math.min(1, 0.5 / (norm + 1e-6));
    for (const name of ['W', 'b'] as const)
      p[name] = p[name].map((pk, k) => {
        const gk = g[name][k] * clip;
        m[name][k] = 0.9 * m[name][k] + 0.1 * gk;
        v[name][k] = 0.999 * v[name][k] + 0.001 * gk * gk;
        const decayed = name === 'W' ? pk * (1 - lr * 0.1) : pk;
        const denom = Math.sqrt(v[name][k] / (1 - 0.999 ** t)) + 1e-8;
        return decayed - (lr / (1 - 0.9 ** t)) * (m[name][k] / denom);
      });
  }
  /** The largest error relative to the reference's magnitude, or to `floor` times its largest one. */
  const worst = (a: ArrayLike<number>, want: Float64Array, floor: number) => {
    let w = 0;
    floor *= want.reduce((x, y) => Math.max(x, Math.abs(y)), 0);
    for (let k = 0; k < want.length; k++) w = Math.max(w, Math.abs(a[k] - want[k]) / (Math.abs(want[k]) + floor));
    return w;
  };
  assert.ok(worst(got.get('W')!, p.W, 1) < 1e-6, 'W');
  assert.ok(worst(got.get('b')!, p.b, 1) < 1e-6, 'b');
  // Every range of rows was updated, the last (shorter) one too: each moment is within 0.1 % of AdamW's.
  assert.ok(worst(got.get('exp_avg.W')!, m.W, 1e-3) < 1e-3, 'exp_avg.W');
  assert.ok(worst(got.get('exp_avg_sq.W')!, v.W, 1e-3) < 1e-3, 'exp_avg_sq.W');
  await step.release();
  await state.release();
});

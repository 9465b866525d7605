import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ops from '../../src/engine/ops';
import { logsumexp } from '../../src/engine/nn';
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

// A tied table E [V, D]: an embedding lookup (a token repeated, so rows add up) and the output head.
// With the update apart, the lookup's rows are added into E's gradient by the step, after the run.
const [V, D, N] = [11, 6, 9];

function tiedStep(spec: { updateApart: boolean; accumulate: boolean }) {
  const e = input('E', 'float32', [V, D]),
    w = input('Wh', 'float32', [D, D]);
  const ids = input('ids', 'int32', ['N']),
    targets = input('targets', 'int32', ['N']);
  const h = ops.sigmoid(ops.matmul(ops.gather(e, ids), w));
  const logits = ops.matmul(h, ops.transpose(e, [1, 0]));
  const picked = ops.reshape(ops.gatherElements(logits, ops.unsqueeze(targets, -1), -1), ['N']);
  const loss = ops.mean(logsumexp(logits).sub(picked));
  return buildTrainGraph({ loss, params: [e, w], optimizer: adamw({ weightDecay: 0.1 }), maxGradNorm: 0.05, ...spec });
}

async function trainTied(spec: { updateApart: boolean; accumulate: boolean }) {
  const graph = tiedStep(spec);
  const rng = new Rng(5);
  const state = new State(await Runtime.create({ provider: 'cpu' }));
  state.setHost(
    'E',
    Float32Array.from({ length: V * D }, () => rng.normal()),
    [V, D],
  );
  state.setHost(
    'Wh',
    Float32Array.from({ length: D * D }, () => rng.normal() * 0.5),
    [D, D],
  );
  const batch = () => ({
    ids: hostTensor('int32', Int32Array.from([3, 3, 0, 10, 3, 7, 0, 1, 2]), [N]),
    targets: hostTensor(
      'int32',
      Int32Array.from({ length: N }, () => rng.int(V)),
      [N],
    ),
  });
  const step = await TrainStep.create(graph, state);
  const norms = [];
  for (let t = 1; t <= 3; t++)
    norms.push((await step.run(spec.accumulate ? [batch(), batch()] : batch(), 0.02, t)).grad_norm);
  const got = await state.read(['E', 'Wh', 'exp_avg_sq.E']);
  await step.release();
  return { graph, norms, got };
}

for (const accumulate of [false, true])
  test(`an embedding's rows added by the step after the run equal the scatter-add in the graph${accumulate ? ', over micro-batches' : ''}`, async () => {
    const apart = await trainTied({ updateApart: true, accumulate });
    const inGraph = await trainTied({ updateApart: false, accumulate });
    assert.deepEqual(
      apart.graph.rowsAdded.map((r) => r.gradient),
      ['grad.E'],
    );
    assert.deepEqual(inGraph.graph.rowsAdded, []);
    for (const [k, norm] of apart.norms.entries())
      assert.ok(Math.abs(norm - inGraph.norms[k]) < 1e-5 * norm, `grad_norm ${k}`);
    assert.ok(apart.norms[0] > 0.05, 'the gradients are clipped');
    for (const name of ['E', 'Wh', 'exp_avg_sq.E']) {
      const [a, b] = [apart.got.get(name)!, inGraph.got.get(name)!];
      const scale = Math.max(...Array.from(b, Math.abs));
      for (let i = 0; i < b.length; i++)
        assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * scale, `${name}[${i}]: ${a[i]} vs ${b[i]}`);
    }
  });

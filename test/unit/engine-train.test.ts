import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nn from '../../src/engine/nn';
import * as ops from '../../src/engine/ops';
import { toOnnx } from '../../src/engine/onnx';
import { adamw } from '../../src/engine/optim';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { State } from '../../src/engine/state';
import { TrainStep } from '../../src/engine/step';
import { buildTrainGraph } from '../../src/engine/train-graph';
import { Tensor, input, numel } from '../../src/engine/tensor';
import { Rng } from '../../src/util/rng';

// Task: sequences a b a b a b ... for every pair of distinct tokens a ≠ b. From position 1 on, the
// next token is the one before the current one, so the model must attend to the previous position.
const V = 6,
  T = 8,
  D = 16,
  H = 32;
const pairs = [...Array(V * V).keys()].map((k) => [Math.floor(k / V), k % V]).filter(([a, b]) => a !== b);
const seqs = pairs.map(([a, b]) => Array.from({ length: T + 1 }, (_, i) => (i % 2 ? b : a)));
const batch = {
  tokens: hostTensor('int64', BigInt64Array.from(seqs.flatMap((s) => s.slice(0, T).map(BigInt))), [seqs.length, T]),
  targets: hostTensor('int64', BigInt64Array.from(seqs.flatMap((s) => s.slice(1).map(BigInt))), [seqs.length, T]),
  lossMask: hostTensor(
    'bool',
    Uint8Array.from(seqs.flatMap(() => Array.from({ length: T }, (_, i) => (i >= 1 ? 1 : 0)))),
    [seqs.length, T],
  ),
  causal: hostTensor(
    'bool',
    Uint8Array.from({ length: T * T }, (_, k) => (k % T <= Math.floor(k / T) ? 1 : 0)),
    [T, T],
  ),
};

// name → [shape, init]: 'n' small normal, 1 or 0 constant.
const paramSpecs: Record<string, [number[], 'n' | 0 | 1]> = {
  wte: [[V, D], 'n'],
  wpe: [[T, D], 'n'],
  ln1g: [[D], 1],
  ln1b: [[D], 0],
  wq: [[D, D], 'n'],
  wk: [[D, D], 'n'],
  wv: [[D, D], 'n'],
  wo: [[D, D], 'n'],
  bo: [[D], 0],
  ln2g: [[D], 1],
  ln2b: [[D], 0],
  w1: [[D, H], 'n'],
  b1: [[H], 0],
  w2: [[H, D], 'n'],
  b2: [[D], 0],
  lnfg: [[D], 1],
  lnfb: [[D], 0],
};
const names = Object.keys(paramSpecs);

/** A 1-layer, 1-head causal transformer with tied embeddings, over a symbolic batch 'B'. */
function build() {
  const p = Object.fromEntries(names.map((n) => [n, input(n, 'float32', paramSpecs[n][0])])) as Record<string, Tensor>;
  const tokens = input('tokens', 'int64', ['B', T]),
    targets = input('targets', 'int64', ['B', T]);
  const lossMask = input('lossMask', 'bool', ['B', T]),
    causal = input('causal', 'bool', [T, T]);
  const x0 = ops.gather(p.wte, tokens).add(p.wpe);
  const h = nn.layerNorm(x0, p.ln1g, p.ln1b);
  const [q, k, v] = [p.wq, p.wk, p.wv].map((w) => nn.linear(h, w));
  const scores = ops.matmul(q, ops.transpose(k, [0, 2, 1])).mul(1 / Math.sqrt(D));
  const attention = ops.softmax(ops.where(causal, scores, -1e9), -1);
  const x1 = x0.add(nn.linear(ops.matmul(attention, v), p.wo, p.bo));
  const x2 = x1.add(nn.linear(nn.gelu(nn.linear(nn.layerNorm(x1, p.ln2g, p.ln2b), p.w1, p.b1)), p.w2, p.b2));
  const logits = ops.matmul(nn.layerNorm(x2, p.lnfg, p.lnfb), ops.transpose(p.wte, [1, 0]));
  const loss = nn.crossEntropy(logits, targets, lossMask);
  const targetLogit = ops.gatherElements(logits, ops.unsqueeze(targets, -1), -1);
  const accuracy = nn.maskedMean(
    ops
      .greaterOrEqual(targetLogit, ops.max(logits, -1, true))
      .reshape(targets.shape)
      .cast('float32'),
    lossMask,
  );
  return { params: names.map((n) => p[n]), loss, accuracy };
}

test('a 1-layer transformer learns to continue a b a b ...; State round trip and a second TrainStep continue training', async () => {
  const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });
  const { params, loss, accuracy } = build();
  const graph = buildTrainGraph({
    loss,
    params,
    optimizer: adamw({ weightDecay: 0.01 }),
    maxGradNorm: 1,
    metrics: { accuracy },
  });
  const state = new State(runtime);
  const rng = new Rng(7);
  for (const [n, [shape, init]] of Object.entries(paramSpecs)) {
    state.setHost(
      n,
      Float32Array.from({ length: numel(shape) }, () => (init === 'n' ? 0.1 * rng.normal() : init)),
      shape,
    );
  }
  const step = await TrainStep.create(graph, state);
  const steps = 80,
    lr = (t: number) => 0.02 * Math.min(1, t / 10); // warmup, then constant
  const losses: number[] = [];
  let last: Record<string, number> = {};
  for (let t = 1; t <= steps; t++) {
    last = await step.run(batch, lr(t), t);
    losses.push(last.loss);
  }
  assert.ok(losses[steps - 1] <= losses[0] / 10, `loss ${losses[0]} → ${losses[steps - 1]}`);
  assert.equal(last.accuracy, 1);

  // State.read returns the trained values: a forward-only graph fed with them gives the loss the next step reports.
  const snapshot = new Map([...(await state.read(state.names()))].map(([n, v]) => [n, Float32Array.from(v)]));
  const forward = await runtime.load(toOnnx({ loss }));
  const feeds = Object.fromEntries(names.map((n) => [n, hostTensor('float32', snapshot.get(n)!, paramSpecs[n][0])]));
  const evaluated = ((await forward.run({ ...batch, ...feeds })).loss.data as Float32Array)[0];
  assert.ok(evaluated <= losses[0] / 10);

  // A second TrainStep on the same State continues from there (parameters and optimizer slots)...
  await step.release();
  const again = await TrainStep.create(graph, state);
  const next = await again.run(batch, lr(steps + 1), steps + 1);
  assert.ok(Math.abs(next.loss - evaluated) <= 1e-6 * evaluated, `${next.loss} vs ${evaluated}`);

  // ...and so does one on a fresh State filled from the snapshot: the same step gives the same result.
  const copy = new State(runtime);
  for (const s of graph.state) copy.setHost(s.name, snapshot.get(s.name)!, s.shape);
  assert.equal(graph.state.length, 3 * names.length); // parameters, exp_avg, exp_avg_sq
  const fromCopy = await TrainStep.create(graph, copy);
  const nextFromCopy = await fromCopy.run(batch, lr(steps + 1), steps + 1);
  assert.equal(nextFromCopy.loss, next.loss);
  const [a, b] = [await state.read(names), await copy.read(names)];
  for (const n of names) assert.deepEqual(b.get(n), a.get(n), `parameter ${n} after the continued step`);

  for (const r of [again, fromCopy, forward]) await r.release();
  await state.release();
  await copy.release();
});

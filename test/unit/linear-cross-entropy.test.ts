/**
 * The fused linear cross-entropy against the plain one (crossEntropy of dense(hidden, W, true)):
 * the same loss, accuracy and gradients whatever the number of chunks, and a finite-difference check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grad } from '../../src/engine/autodiff';
import { gradCheck } from '../../src/engine/gradcheck';
import { fusedLinearCrossEntropy } from '../../src/engine/linear-cross-entropy';
import { ChunkGradients, chunkCount } from '../../src/engine/token-chunks';
import { crossEntropy, maskedMean } from '../../src/engine/nn';
import { cast, dense, gather, gatherElements, greaterOrEqual, max, reshape, unsqueeze } from '../../src/engine/ops';
import { toOnnx } from '../../src/engine/onnx';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { Tensor, input, topoSort } from '../../src/engine/tensor';
import { Rng } from '../../src/util/rng';

const V = 37,
  D = 6;

/** The plain head and loss, as sftLossGraph computed them before. */
function plain(hidden: Tensor, weight: Tensor, targets: Tensor, mask: Tensor) {
  const logits = dense(hidden, weight, true);
  const targetLogit = gatherElements(logits, unsqueeze(targets, -1), -1);
  const correct = reshape(cast(greaterOrEqual(targetLogit, max(logits, -1, true)), 'float32'), targets.shape);
  return { loss: crossEntropy(logits, targets, mask), accuracy: maskedMean(correct, mask) };
}

interface Case {
  b: number;
  t: number;
  /** Trained positions, as 0/1 per token. */
  mask: (i: number) => number;
  /** The weight is also the token embedding (a tied head): its gradients add. */
  tied?: boolean;
}

/** Loss, accuracy and the gradients of hidden and W, from the plain loss or the fused one in `chunks` chunks. */
async function run(c: Case, chunks?: number, gradients: ChunkGradients = 'hidden and weight') {
  const hidden0 = input('hidden', 'float32', ['B', 'T', D]);
  const weight = input('weight', 'float32', [V, D]);
  const tokens = input('tokens', 'int32', ['B', 'T']);
  const targets = input('targets', 'int32', ['B', 'T']);
  const mask = input('mask', 'float32', ['B', 'T']);
  const hidden = c.tied ? hidden0.add(gather(weight, tokens)) : hidden0;
  const out = chunks
    ? fusedLinearCrossEntropy(hidden, weight, targets, mask, chunks, gradients)
    : plain(hidden, weight, targets, mask);
  const grads =
    gradients === 'none'
      ? {}
      : Object.fromEntries(zip(['dHidden', 'dWeight'], grad(out.loss, [hidden0, weight], [out.accuracy])));
  const program = await (
    await Runtime.create({ provider: 'cpu', threads: 1 })
  ).load(toOnnx({ loss: out.loss, accuracy: out.accuracy, ...grads }));
  const rng = new Rng(3);
  const n = c.b * c.t;
  const h = Float32Array.from({ length: n * D }, () => rng.normal());
  const w = Float32Array.from({ length: V * D }, () => rng.normal());
  // Some targets are the argmax, so the accuracy is neither 0 nor 1.
  const ids = Int32Array.from({ length: n }, () => rng.int(V));
  const feeds = {
    hidden: hostTensor('float32', h, [c.b, c.t, D]),
    weight: hostTensor('float32', w, [V, D]),
    tokens: hostTensor('int32', ids, [c.b, c.t]),
    targets: hostTensor(
      'int32',
      ids.map((v, i) => (i % 3 === 0 ? argmaxRow(h, w, i) : v)),
      [c.b, c.t],
    ),
    mask: hostTensor(
      'float32',
      Float32Array.from({ length: n }, (_, i) => c.mask(i)),
      [c.b, c.t],
    ),
  };
  const feedsUsed = Object.fromEntries(program.model.inputs.map((i) => [i.name, feeds[i.name as keyof typeof feeds]]));
  const result = await program.run(feedsUsed);
  await program.release();
  return Object.fromEntries(Object.entries(result).map(([k, v]) => [k, Array.from(v.data as Float32Array)]));
}

const zip = <A, B>(as: A[], bs: B[]): [A, B][] => as.map((a, i) => [a, bs[i]]);

/** The index of the largest logit of row i (no tied embedding). */
function argmaxRow(h: Float32Array, w: Float32Array, i: number): number {
  let best = 0,
    top = -Infinity;
  for (let v = 0; v < V; v++) {
    let z = 0;
    for (let k = 0; k < D; k++) z += h[i * D + k] * w[v * D + k];
    if (z > top) [best, top] = [v, z];
  }
  return best;
}

function assertClose(got: Record<string, number[]>, want: Record<string, number[]>, what: string) {
  for (const name of Object.keys(want)) {
    const scale = Math.max(1e-3, ...want[name].map(Math.abs));
    assert.equal(got[name].length, want[name].length, `${what}: ${name} size`);
    want[name].forEach((w, i) =>
      assert.ok(Math.abs(got[name][i] - w) <= 1e-5 * scale, `${what}: ${name}[${i}] is ${got[name][i]}, want ${w}`),
    );
  }
}

const CASES: [string, Case][] = [
  ['masked positions', { b: 3, t: 5, mask: (i) => (i % 5 < 2 ? 0 : 1) }],
  ['every position, 7 tokens', { b: 1, t: 7, mask: () => 1 }],
  ['a tied embedding', { b: 2, t: 4, mask: (i) => (i % 4 === 0 ? 0 : 1), tied: true }],
];

for (const [what, c] of CASES)
  test(`fused linear cross-entropy with ${what} gives the plain loss, accuracy and gradients`, async () => {
    const want = await run(c);
    assert.ok(want.accuracy[0] > 0 && want.accuracy[0] < 1, `accuracy ${want.accuracy[0]} tests nothing`);
    for (const chunks of [1, 3, 4, c.b * c.t + 4]) assertClose(await run(c, chunks), want, `${chunks} chunks`);
    const { loss, accuracy } = want;
    assertClose(await run(c, 3, 'none'), { loss, accuracy }, '3 chunks without gradients');
  });

test('an empty mask gives a zero loss and zero gradients, as the plain loss does', async () => {
  const c = { b: 2, t: 3, mask: () => 0 };
  const want = await run(c);
  assert.equal(want.loss[0], 0);
  assertClose(await run(c, 4), want, '4 chunks');
});

test('without a trained weight, no product for its gradient is emitted', () => {
  const hidden = input('hidden', 'float32', ['B', 'T', D]);
  const weight = input('weight', 'float32', [V, D]);
  const targets = input('targets', 'int32', ['B', 'T']);
  const mask = input('mask', 'float32', ['B', 'T']);
  const gemms = (gradients: ChunkGradients, wrt: Tensor[]) => {
    const { loss } = fusedLinearCrossEntropy(hidden, weight, targets, mask, 3, gradients);
    return topoSort(grad(loss, wrt)).filter((t) => t.op === 'Gemm').length;
  };
  // Per chunk: the logits and the hidden states' gradient, and the weight's only when it trains.
  assert.equal(gemms('hidden', [hidden]), 6);
  assert.equal(gemms('hidden and weight', [hidden, weight]), 9);
  // Evaluation: the logits alone.
  const { loss, accuracy } = fusedLinearCrossEntropy(hidden, weight, targets, mask, 3, 'none');
  assert.equal(topoSort([loss, accuracy]).filter((t) => t.op === 'Gemm').length, 3);
});

test('a float64 finite-difference check of the fused loss with respect to hidden and W', async () => {
  const n = 5;
  const rng = new Rng(8);
  const r = await gradCheck(
    (h, w, t, m) => fusedLinearCrossEntropy(h, w, t, m, 3).loss,
    [
      { name: 'h', shape: [1, n, 4], data: Float64Array.from({ length: n * 4 }, () => rng.normal()) },
      { name: 'w', shape: [9, 4], data: Float64Array.from({ length: 9 * 4 }, () => rng.normal()) },
      { name: 't', shape: [1, n], dtype: 'int32', data: Int32Array.from({ length: n }, () => rng.int(9)) },
      { name: 'm', shape: [1, n], fixed: true, data: Float64Array.from([1, 0, 1, 1, 1]) },
    ],
  );
  assert.ok(r.maxRelError < 1e-6, JSON.stringify(r));
});

test('chunks hold about 64 MB of logits each, and one chunk serves a small vocabulary', () => {
  assert.equal(chunkCount(4 * 512, 151936), 19);
  assert.equal(chunkCount(4 * 512, 50257), 7);
  assert.equal(chunkCount(4 * 512, 1000), 1);
  assert.equal(chunkCount(1, 151936), 1);
});

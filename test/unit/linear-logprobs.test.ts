/**
 * The fused linear log-probs against the plain ones (tokenLogprobs and the entropy of
 * dense(hidden, W, true) / τ): the same log-probs, statistics and gradients whatever the number of
 * chunks, and a finite-difference check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grad } from '../../src/engine/autodiff';
import { gradCheck } from '../../src/engine/gradcheck';
import { LinearLogprobsOptions, fusedLinearLogprobs } from '../../src/engine/linear-logprobs';
import { logsumexp, tokenLogprobs } from '../../src/engine/nn';
import { dense, gather, mean, softmax, sum } from '../../src/engine/ops';
import { toOnnx } from '../../src/engine/onnx';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { Tensor, input, topoSort } from '../../src/engine/tensor';
import { Rng } from '../../src/util/rng';

const V = 37,
  D = 6;

/** Entropy of softmax(logits) at each position: logsumexp(z) - Σ softmax(z) · z. */
const entropy = (logits: Tensor) => logsumexp(logits, -1).sub(sum(softmax(logits, -1).mul(logits), -1));

/** The plain head and statistics, as the RL stages computed them before. */
function plain(hidden: Tensor, weight: Tensor, targets: Tensor, temperature: number) {
  const logits = dense(hidden, weight, true).div(temperature);
  return { logprobs: tokenLogprobs(logits, targets), entropy: entropy(logits), meanLogit: mean(logits, -1) };
}

interface Case {
  b: number;
  t: number;
  temperature: number;
  /** The weight is also the token embedding (a tied head): its gradients add. */
  tied?: boolean;
}

/**
 * The log-probs, entropy, mean logit and, unless `gradients` is 'none', the gradients of
 * Σ c · logprobs (c a fixed random weight per position, some 0 and some negative) with respect to
 * hidden and W, from the plain head or the fused one with `options`.
 */
async function run(c: Case, options?: LinearLogprobsOptions) {
  const hidden0 = input('hidden', 'float32', ['B', 'T', D]);
  const weight = input('weight', 'float32', [V, D]);
  const tokens = input('tokens', 'int32', ['B', 'T']);
  const targets = input('targets', 'int32', ['B', 'T']);
  const coefficients = input('coefficients', 'float32', ['B', 'T']);
  const hidden = c.tied ? hidden0.add(gather(weight, tokens)) : hidden0;
  const out = options
    ? fusedLinearLogprobs(hidden, weight, targets, { temperature: c.temperature, entropy: true, ...options })
    : plain(hidden, weight, targets, c.temperature);
  const wrt = options?.gradients === 'hidden' ? [hidden0] : [hidden0, weight];
  const grads =
    options?.gradients === 'none'
      ? {}
      : Object.fromEntries(
          grad(sum(out.logprobs.mul(coefficients)), wrt).map((g, i) => [['dHidden', 'dWeight'][i], g]),
        );
  const program = await (
    await Runtime.create({ provider: 'cpu', threads: 1 })
  ).load(toOnnx({ logprobs: out.logprobs, entropy: out.entropy!, meanLogit: out.meanLogit, ...grads }));
  const rng = new Rng(3);
  const n = c.b * c.t;
  const dims = [c.b, c.t];
  const feeds = {
    hidden: hostTensor(
      'float32',
      Float32Array.from({ length: n * D }, () => rng.normal()),
      [c.b, c.t, D],
    ),
    weight: hostTensor(
      'float32',
      Float32Array.from({ length: V * D }, () => rng.normal()),
      [V, D],
    ),
    tokens: hostTensor(
      'int32',
      Int32Array.from({ length: n }, () => rng.int(V)),
      dims,
    ),
    targets: hostTensor(
      'int32',
      Int32Array.from({ length: n }, () => rng.int(V)),
      dims,
    ),
    coefficients: hostTensor(
      'float32',
      Float32Array.from({ length: n }, (_, i) => (i % 4 === 1 ? 0 : rng.normal())),
      dims,
    ),
  };
  const feedsUsed = Object.fromEntries(program.model.inputs.map((i) => [i.name, feeds[i.name as keyof typeof feeds]]));
  const result = await program.run(feedsUsed);
  await program.release();
  return Object.fromEntries(Object.entries(result).map(([k, v]) => [k, Array.from(v.data as Float32Array)]));
}

function assertClose(got: Record<string, number[]>, want: Record<string, number[]>, what: string) {
  for (const name of Object.keys(want)) {
    const scale = Math.max(1e-3, ...want[name].map(Math.abs));
    assert.equal(got[name]?.length, want[name].length, `${what}: ${name} size`);
    want[name].forEach((w, i) =>
      assert.ok(Math.abs(got[name][i] - w) <= 1e-5 * scale, `${what}: ${name}[${i}] is ${got[name][i]}, want ${w}`),
    );
  }
}

const CASES: [string, Case][] = [
  ['10 tokens at temperature 0.7', { b: 2, t: 5, temperature: 0.7 }],
  ['7 tokens at temperature 1', { b: 1, t: 7, temperature: 1 }],
  ['a tied embedding at temperature 1.3', { b: 2, t: 4, temperature: 1.3, tied: true }],
];

for (const [what, c] of CASES)
  test(`fused linear log-probs with ${what} give the plain log-probs, statistics and gradients`, async () => {
    const want = await run(c);
    for (const chunks of [1, 3, c.b * c.t + 4])
      assertClose(await run(c, { chunks, gradients: 'hidden and weight' }), want, `${chunks} chunks`);
    const { logprobs, entropy: h, meanLogit, dHidden } = want;
    assertClose(await run(c, { chunks: 3 }), { logprobs, entropy: h, meanLogit, dHidden }, '3 chunks, hidden only');
    assertClose(await run(c, { chunks: 3, gradients: 'none' }), { logprobs, entropy: h, meanLogit }, 'no gradients');
  });

test('the backward computes each chunk’s logits again, except with one chunk', () => {
  const hidden = input('hidden', 'float32', ['B', 'T', D]);
  const weight = input('weight', 'float32', [V, D]);
  const targets = input('targets', 'int32', ['B', 'T']);
  const count = (options: LinearLogprobsOptions, op: string) => {
    const { logprobs } = fusedLinearLogprobs(hidden, weight, targets, options);
    const wrt = options.gradients === 'hidden and weight' ? [hidden, weight] : [hidden];
    return topoSort(grad(sum(logprobs), wrt)).filter((t) => t.op === op).length;
  };
  // Per chunk: the logits in the forward and again in the backward, and the hidden states' gradient.
  assert.equal(count({ chunks: 3 }, 'Softmax'), 6);
  assert.equal(count({ chunks: 3 }, 'Gemm'), 9);
  assert.equal(count({ chunks: 3, gradients: 'hidden and weight' }, 'Gemm'), 12);
  assert.equal(count({ chunks: 1 }, 'Softmax'), 1);
  assert.equal(count({ chunks: 1 }, 'Gemm'), 2);
});

test('a float64 finite-difference check of the fused log-probs with respect to hidden and W', async () => {
  const n = 5;
  const rng = new Rng(8);
  const r = await gradCheck(
    (h, w, t) => fusedLinearLogprobs(h, w, t, { chunks: 3, temperature: 0.8, gradients: 'hidden and weight' }).logprobs,
    [
      { name: 'h', shape: [1, n, 4], data: Float64Array.from({ length: n * 4 }, () => rng.normal()) },
      { name: 'w', shape: [9, 4], data: Float64Array.from({ length: 9 * 4 }, () => rng.normal()) },
      { name: 't', shape: [1, n], dtype: 'int32', data: Int32Array.from({ length: n }, () => rng.int(9)) },
    ],
  );
  assert.ok(r.maxRelError < 1e-6, JSON.stringify(r));
});

test('bad operands are refused with the shapes named', () => {
  const hidden = input('hidden', 'float32', ['B', 'T', D]);
  const targets = input('targets', 'int32', ['B', 'T']);
  assert.throws(() => fusedLinearLogprobs(hidden, input('w', 'float32', [V, D + 1]), targets), /must be \[V, 6\]/);
  assert.throws(() => fusedLinearLogprobs(hidden, input('w', 'float32', [V, D]), targets, { chunks: 0 }), /chunks/);
});

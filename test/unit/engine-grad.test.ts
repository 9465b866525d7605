import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grad } from '../../src/engine/autodiff';
import { CheckInput, gradCheck } from '../../src/engine/gradcheck';
import * as nn from '../../src/engine/nn';
import * as ops from '../../src/engine/ops';
import * as trig from '../../src/engine/ops-trig';
import { toOnnx } from '../../src/engine/onnx';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { Tensor, input, topoSort } from '../../src/engine/tensor';
import { Rng } from '../../src/util/rng';

type Gen = (n: number, seed: number) => Float64Array;
const gen =
  (f: (r: Rng) => number): Gen =>
  (n, seed) => {
    const r = new Rng(seed);
    return Float64Array.from({ length: n }, () => f(r));
  };
/** Standard normal. */
const nrm = gen((r) => r.normal());
/** In [0.5, 2]: the domain of Log, Sqrt, Reciprocal, and Pow's base. */
const pos = gen((r) => 0.5 + 1.5 * r.next());
/** |x| ≥ 0.2: away from the kinks of Abs, Relu, Max(x, 0), and from Div's pole. */
const far = gen((r) => {
  const z = r.normal();
  return Math.sign(z || 1) * (0.2 + Math.abs(z));
});
/** Fixed values (one per element, in order). */
const vals =
  (...v: number[]): Gen =>
  (n) => {
    assert.equal(v.length, n);
    return Float64Array.from(v);
  };
const int32 = (...v: number[]) => Int32Array.from(v);
const int64 = (...v: number[]) => BigInt64Array.from(v.map(BigInt));
const bool = (...v: number[]) => Uint8Array.from(v);

/** An input: shape, then float64 values from a generator (default normal) or fixed int/bool data. */
type In = [shape: number[], data?: Gen | Int32Array | BigInt64Array | Uint8Array];
type Row = [name: string, f: (...xs: Tensor[]) => Tensor, inputs: In[]];

function checkInputs(ins: In[]): CheckInput[] {
  return ins.map(([shape, data = nrm], i) => {
    const name = 'abcdefgh'[i];
    if (typeof data === 'function')
      return {
        name,
        shape,
        data: data(
          shape.reduce((p, d) => p * d, 1),
          100 + i,
        ),
      };
    const dtype = data instanceof Int32Array ? 'int32' : data instanceof BigInt64Array ? 'int64' : 'bool';
    return { name, shape, data, dtype };
  });
}

const unary: Row[] = (
  [
    ['Neg', ops.neg, nrm],
    ['Exp', ops.exp, nrm],
    ['Log', ops.log, pos],
    ['Sqrt', ops.sqrt, pos],
    ['Reciprocal', ops.reciprocal, far],
    ['Tanh', ops.tanh, nrm],
    ['Sigmoid', ops.sigmoid, nrm],
    ['Abs', ops.abs, far],
    ['Relu', ops.relu, far],
    ['Sin', trig.sin, nrm],
    ['Cos', trig.cos, nrm],
  ] as const
).map(([name, f, g]): Row => [name, f, [[[2, 3], g]]]);

// Every binary op over shapes that broadcast in different ways, both orders, and with a number on either side.
const broadcasts = [
  [
    [2, 3],
    [2, 3],
  ],
  [[2, 3], [3]],
  [[3], [2, 3]],
  [
    [2, 1],
    [1, 3],
  ],
  [
    [4, 2, 3],
    [2, 1],
  ],
  [
    [2, 1],
    [4, 2, 3],
  ],
];
type Bin = (a: Tensor | number, b: Tensor | number) => Tensor;
const binaryOps: [string, Bin, Gen, Gen, number][] = [
  ['Add', ops.add, nrm, nrm, 0.7],
  ['Sub', ops.sub, nrm, nrm, 0.7],
  ['Mul', ops.mul, nrm, nrm, -1.3],
  ['Div', ops.div, nrm, far, 1.5],
  ['Pow', ops.pow, pos, nrm, 1.7],
  ['Max', ops.maximum, nrm, nrm, 0],
  ['Min', ops.minimum, nrm, nrm, 0],
];
const binary: Row[] = binaryOps.flatMap(([name, f, ga, gb, c]): Row[] => {
  const kink = name === 'Max' || name === 'Min'; // against the number 0, keep |x| away from 0
  return [
    ...broadcasts.map(([sa, sb]): Row => [
      `${name} ${JSON.stringify(sa)} ⊕ ${JSON.stringify(sb)}`,
      f,
      [
        [sa, ga],
        [sb, gb],
      ],
    ]),
    [`${name} tensor ⊕ ${c}`, (a) => f(a, c), [[[2, 3], kink ? far : ga]]],
    [`${name} ${c} ⊕ tensor`, (b) => f(c, b), [[[2, 3], kink ? far : gb]]],
  ];
});

const x234: In = [[2, 3, 4]];
const rows: Row[] = [
  ...unary,
  ...binary,
  ['Where [2,3] ? [2,3] : [3]', (c, a, b) => ops.where(c, a, b), [[[2, 3], bool(1, 0, 0, 1, 1, 0)], [[2, 3]], [[3]]]],
  ['Where [2,1] ? number : [1,3]', (c, b) => ops.where(c, 0.5, b), [[[2, 1], bool(0, 1)], [[1, 3]]]],
  [
    'Clip inside and outside [-0.5, 0.5]',
    (x) => ops.clip(x, -0.5, 0.5),
    [[[2, 3], vals(-1.2, -0.3, 0.1, 0.4, 0.9, -0.7)]],
  ],

  ['MatMul [3,4] @ [4,5]', ops.matmul, [[[3, 4]], [[4, 5]]]],
  ['MatMul [2,3,4] @ [4,5] (shared weight)', ops.matmul, [[[2, 3, 4]], [[4, 5]]]],
  ['MatMul [2,1,3,4] @ [1,2,4,5] (batch broadcast)', ops.matmul, [[[2, 1, 3, 4]], [[1, 2, 4, 5]]]],
  ['MatMul [2,3,4] @ [2,4,5]', ops.matmul, [[[2, 3, 4]], [[2, 4, 5]]]],
  ['MatMul [3,4] @ [2,4,5]', ops.matmul, [[[3, 4]], [[2, 4, 5]]]],
  ['Gemm [3,4] @ [4,5]', (a, b) => ops.gemm(a, b), [[[3, 4]], [[4, 5]]]],
  ['Gemm [3,4] @ [5,4]ᵀ', (a, b) => ops.gemm(a, b, false, true), [[[3, 4]], [[5, 4]]]],
  ['Gemm [4,3]ᵀ @ [4,5]', (a, b) => ops.gemm(a, b, true, false), [[[4, 3]], [[4, 5]]]],
  ['Gemm [4,3]ᵀ @ [5,4]ᵀ', (a, b) => ops.gemm(a, b, true, true), [[[4, 3]], [[5, 4]]]],
  ['dense [2,3,4] @ [5,4]ᵀ', (x, w) => ops.dense(x, w, true), [x234, [[5, 4]]]],

  ['ReduceSum all axes', (x) => ops.sum(x), [x234]],
  ['ReduceSum axes [0,2]', (x) => ops.sum(x, [0, 2]), [x234]],
  ['ReduceSum axes [-1,0] keepdims', (x) => ops.sum(x, [-1, 0], true), [x234]],
  ['ReduceSum axis -2', (x) => ops.sum(x, -2), [x234]],
  ['mean all axes', (x) => ops.mean(x), [x234]],
  ['mean axes [0,2] keepdims', (x) => ops.mean(x, [0, 2], true), [x234]],
  ['mean axis -1', (x) => ops.mean(x, -1), [x234]],
  ['ReduceMax all axes', (x) => ops.max(x), [x234]],
  ['ReduceMax axes [0,2]', (x) => ops.max(x, [0, 2]), [x234]],
  ['ReduceMax axis -1 keepdims', (x) => ops.max(x, -1, true), [x234]],
  ['Softmax axis -1', (x) => ops.softmax(x, -1), [x234]],
  ['Softmax axis 1', (x) => ops.softmax(x, 1), [x234]],

  ['Reshape [2,3,4] → [4,-1]', (x) => ops.reshape(x, [4, -1]), [x234]],
  ['Reshape [2,3,4] → [6,1,4]', (x) => ops.reshape(x, [6, 1, 4]), [x234]],
  ['Transpose [1,2,0]', (x) => ops.transpose(x, [1, 2, 0]), [x234]],
  ['Transpose [2,0,1]', (x) => ops.transpose(x, [2, 0, 1]), [x234]],
  ['Expand [3,1] → [2,3,4]', (x) => ops.expand(x, [2, 3, 4]), [[[3, 1]]]],
  ['Expand [4] → [2,3,4]', (x) => ops.expand(x, [2, 3, 4]), [[[4]]]],
  ['Concat axis 1, an input twice', (a, b) => ops.concat([a, b, a], 1), [[[2, 3]], [[2, 1]]]],
  ['Concat axis -2', (a, b) => ops.concat([a, b], -2), [[[2, 3, 2]], [[2, 1, 2]]]],
  ['Slice [1:3] axis 1', (x) => ops.slice(x, 1, 1, 3), [x234]],
  ['Slice [-3:-1] axis -1', (x) => ops.slice(x, -1, -3, -1), [x234]],
  ['Slice [0:-2] axis 2', (x) => ops.slice(x, 2, 0, -2), [x234]],
  ['Slice [-2:] axis 1', (x) => ops.slice(x, 1, -2), [x234]],
  ['Slice [1:] axis 0', (x) => ops.slice(x, 0, 1), [x234]],
  ['Slice [1:100] axis 2 (end past the dim)', (x) => ops.slice(x, 2, 1, 100), [x234]],
  ['Slice [-10:2] axis 2 (start before the beginning)', (x) => ops.slice(x, 2, -10, 2), [x234]],
  ['Slice [-10:-1] axis 1', (x) => ops.slice(x, 1, -10, -1), [x234]],
  ['Gather repeated int64 rows', ops.gather, [[[5, 3]], [[2, 3], int64(0, 2, 2, 4, 0, 2)]]],
  ['Gather repeated int32 rows of a rank-3 table', ops.gather, [[[4, 2, 3]], [[5], int32(3, 1, 3, 3, 0)]]],
  ['Gather negative indices', ops.gather, [[[4, 2]], [[3], int64(-1, 0, 3)]]],
  [
    'GatherElements axis 1, repeated',
    (x, i) => ops.gatherElements(x, i, 1),
    [[[3, 4]], [[3, 5], int64(0, 0, 3, 3, 3, 1, 2, 1, 1, 0, 2, 2, 2, 2, 2)]],
  ],
  [
    'GatherElements axis 0, repeated',
    (x, i) => ops.gatherElements(x, i, 0),
    [[[3, 4]], [[2, 4], int32(2, 0, 2, 1, 2, 0, 0, 1)]],
  ],
  [
    'GatherElements axis -1, rank 3',
    (x, i) => ops.gatherElements(x, i, -1),
    [[[2, 2, 3]], [[2, 2, 2], int64(2, 2, 0, 1, 1, 1, 0, 0)]],
  ],

  ['accumulation: x * x', (x) => ops.mul(x, x), [[[2, 3]]]],
  ['accumulation: x @ xᵀ', (x) => ops.matmul(x, ops.transpose(x, [1, 0])), [[[3, 4]]]],
  [
    'accumulation: exp(x) + x·tanh(x) - x',
    (x) =>
      ops
        .exp(x)
        .add(x.mul(ops.tanh(x)))
        .sub(x),
    [[[2, 3]]],
  ],

  ['logsumexp axis -1', (x) => nn.logsumexp(x, -1), [x234]],
  ['logsumexp axis 0 keepdims', (x) => nn.logsumexp(x, 0, true), [x234]],
  ['logSoftmax axis -1', (x) => nn.logSoftmax(x, -1), [x234]],
  ['logSoftmax axis 1', (x) => nn.logSoftmax(x, 1), [x234]],
  ['softplus (large and small |x|)', nn.softplus, [[[2, 3], vals(-30, -2.5, -0.3, 0.4, 3, 25)]]],
  ['logSigmoid', nn.logSigmoid, [[[2, 3], far]]],
  ['layerNorm', (x, g, b) => nn.layerNorm(x, g, b), [x234, [[4]], [[4]]]],
  ['rmsNorm', (x, w) => nn.rmsNorm(x, w, 1e-5), [x234, [[4]]]],
  ['rmsNorm, weight broadcast over heads', (x, w) => nn.rmsNorm(x, w, 1e-2), [[[2, 3, 2, 4]], [[4]]]],
  ['gelu', nn.gelu, [[[2, 3], vals(-3, -1, -0.2, 0.3, 1.2, 2.5)]]],
  ['linear with bias', (x, w, b) => nn.linear(x, w, b), [x234, [[4, 5]], [[5]]]],
  ['linear with bias, weight stored [out, in]', (x, w, b) => nn.linear(x, w, b, true), [x234, [[5, 4]], [[5]]]],
  ['linear without bias', (x, w) => nn.linear(x, w), [[[3, 4]], [[4, 2]]]],
  ['tokenLogprobs', nn.tokenLogprobs, [[[2, 3, 5]], [[2, 3], int32(0, 4, 2, 2, 1, 3)]]],
  ['crossEntropy', nn.crossEntropy, [[[2, 3, 5]], [[2, 3], int64(0, 4, 2, 2, 1, 3)]]],
  [
    'crossEntropy with a bool mask',
    nn.crossEntropy,
    [[[2, 3, 5]], [[2, 3], int32(0, 4, 2, 2, 1, 3)], [[2, 3], bool(1, 1, 0, 0, 1, 1)]],
  ],
  [
    'crossEntropy with a float mask',
    nn.crossEntropy,
    [[[2, 3, 5]], [[2, 3], int32(0, 4, 2, 2, 1, 3)], [[2, 3], vals(1, 0, 1, 1, 0, 0)]],
  ],
  [
    'maskedMean',
    nn.maskedMean,
    [x234, [[2, 3, 4], bool(...Array.from({ length: 24 }, (_, i) => ((i * 7) % 3 ? 1 : 0)))]],
  ],
  [
    'transformer-style block',
    (x, w, g, b, t) => nn.crossEntropy(nn.gelu(nn.layerNorm(ops.matmul(x, w), g, b)), t),
    [x234, [[4, 5]], [[5]], [[5]], [[2, 3], int32(0, 4, 2, 2, 1, 3)]],
  ],
];

for (const [name, f, ins] of rows) {
  test(`grad check: ${name}`, async () => {
    const res = await gradCheck(f, checkInputs(ins));
    assert.ok(res.maxRelError <= 1e-5, `max relative error ${res.maxRelError}: ${JSON.stringify(res.worst)}`);
  });
}

/** Runs a graph on CPU with float64 or float32 feeds ([shape, values]). */
async function run(
  outputs: Record<string, Tensor>,
  feeds: Record<string, [number[], Float64Array | Float32Array]>,
): Promise<Record<string, number[]>> {
  const rt = await Runtime.create({ provider: 'cpu', threads: 1 });
  const program = await rt.load(toOnnx(outputs));
  const tensors = Object.entries(feeds).map(([k, [shape, d]]) => [
    k,
    hostTensor(d instanceof Float32Array ? 'float32' : 'float64', d, shape),
  ]);
  const res = await program.run(Object.fromEntries(tensors));
  await program.release();
  return Object.fromEntries(Object.keys(outputs).map((k) => [k, Array.from(res[k].data as Float64Array)]));
}

// Elementwise functions onnxruntime runs only in float32 on CPU, checked in float32 with a wider step.
const float32Only: [string, (x: Tensor) => Tensor][] = [
  ['Erf (onnxruntime has no float64 Erf on CPU)', ops.erf],
  ['silu (onnxruntime fuses x σ(x) into QuickGelu, which has no float64 kernel)', nn.silu],
];
for (const [name, f] of float32Only) {
  test(`${name}: float32 gradient matches central differences`, async () => {
    const x = input('x', 'float32', [8]);
    const [g] = grad(ops.sum(f(x)), [x]);
    const at = Float32Array.from([-1.5, -1, -0.6, -0.2, 0.1, 0.5, 0.9, 1.4]);
    const h = 1e-2,
      up = at.map((v) => v + h),
      down = at.map((v) => v - h);
    const analytic = (await run({ g }, { x: [[8], at] })).g;
    const [yUp, yDown] = [(await run({ y: f(x) }, { x: [[8], up] })).y, (await run({ y: f(x) }, { x: [[8], down] })).y];
    at.forEach((_, i) => {
      const numeric = (yUp[i] - yDown[i]) / (up[i] - down[i]);
      assert.ok(
        Math.abs(analytic[i] - numeric) <= 1e-3 * Math.abs(numeric),
        `x=${at[i]}: ${analytic[i]} vs ${numeric}`,
      );
    });
  });
}

// At kinks and ties the gradient follows a fixed convention: [name, f, x, expected d(sum f)/dx].
const kinks: [string, (x: Tensor) => Tensor, number[], number[]][] = [
  [
    'ReduceMax shares the gradient among tied maxima',
    (x) => ops.max(x.reshape([2, 3]), -1),
    [1, 3, 3, 2, 0, 2],
    [0, 0.5, 0.5, 0.5, 0, 0.5],
  ],
  // max(x, x) with the second operand detached, min(3x, 3x) with the first detached: 1 if ties go first, 3 if second.
  [
    'Max/Min ties send the gradient to the first operand',
    (x) => ops.maximum(x, x.detach()).add(ops.minimum(x.mul(3).detach(), x.mul(3))),
    [1, -2],
    [1, 1],
  ],
  ['Relu at 0 has gradient 0', ops.relu, [0, -1, 2], [0, 0, 1]],
  ['Abs at 0 has gradient 0', ops.abs, [0, -1, 2], [0, -1, 1]],
  ['Clip passes the gradient at its bounds', (x) => ops.clip(x, -1, 1), [-1, 1, 1.5, -2], [1, 1, 0, 0]],
];
for (const [name, f, x, want] of kinks) {
  test(name, async () => {
    const t = input('x', 'float64', [x.length]);
    const [g] = grad(ops.sum(f(t)), [t]);
    assert.deepEqual((await run({ g }, { x: [[x.length], Float64Array.from(x)] })).g, want);
  });
}

test('Cast: the gradient passes through a float64 → float32 → float64 round trip', async () => {
  const x = input('x', 'float64', [2, 3]);
  const data = nrm(6, 7);
  const loss = ops.sum(ops.exp(x.cast('float32').cast('float64')));
  const [gx] = grad(loss, [x]);
  const { g } = await run({ g: gx }, { x: [[2, 3], data] });
  data.forEach((v, i) => assert.ok(Math.abs(g[i] - Math.exp(v)) <= 1e-6 * Math.exp(v), `${g[i]} vs ${Math.exp(v)}`));
});

test('int paths (cast to int, comparisons) give no gradient to their input', async () => {
  const x = input('x', 'float64', [2, 3]);
  const asFloat = (t: Tensor) => ops.sum(t.cast('float64'));
  const intPaths = asFloat(x.mul(3).cast('int32'))
    .add(asFloat(ops.greater(x, 0)))
    .add(asFloat(ops.less(x, 0.5)));
  const [gInt] = grad(intPaths, [x]);
  const [gMixed] = grad(intPaths.add(ops.sum(x.mul(2))), [x]);
  const { a, b } = await run({ a: gInt, b: gMixed }, { x: [[2, 3], nrm(6, 8)] });
  assert.deepEqual(a, [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(b, [2, 2, 2, 2, 2, 2]);
});

test('grad of a parameter the loss does not use is zeros of its shape', async () => {
  const x = input('x', 'float64', [2, 3]),
    unused = input('unused', 'float64', [4, 1]);
  const [gx, gu] = grad(ops.sum(x.mul(x)), [x, unused]);
  assert.deepEqual(gu.shape, [4, 1]);
  const { a, b } = await run(
    { a: gx, b: gu },
    { x: [[2, 3], vals(1, 2, 3, 4, 5, 6)(6, 0)], unused: [[4, 1], nrm(4, 9)] },
  );
  assert.deepEqual(a, [2, 4, 6, 8, 10, 12]);
  assert.deepEqual(b, [0, 0, 0, 0]);
});

test('grad refuses a non-scalar loss, an int loss, and int wrt', () => {
  const x = input('x', 'float64', [2, 3]),
    ids = input('ids', 'int64', [2]);
  assert.throws(() => grad(x.mul(2), [x]), /grad: the loss must be a scalar, got .*\[2, 3\]/);
  assert.throws(() => grad(ops.sum(ids), [x]), /grad: the loss must be float, got .*int64/);
  assert.throws(() => grad(ops.sum(x), [x, ids]), /grad: cannot differentiate with respect to .*int64/);
});

test('crossEntropy over a large vocabulary equals the plain log-softmax formulation, value and gradient', async () => {
  const [n, v] = [6, 3000];
  const rng = new Rng(11);
  // Logits far from 0 (a naive exp overflows float32), the targets spread over the vocabulary.
  const x = Float32Array.from({ length: n * v }, () => 300 + 20 * rng.normal());
  const targets = Int32Array.from({ length: n }, (_, i) => (i * 977) % v);
  const mask = Float32Array.from([1, 1, 0, 1, 0, 1]);
  const logits = input('logits', 'float32', [n, v]);
  const loss = nn.crossEntropy(logits, input('t', 'int32', [n]), input('mask', 'float32', [n]));
  const [g] = grad(loss, [logits]);
  const program = await (await Runtime.create({ provider: 'cpu', threads: 1 })).load(toOnnx({ loss, g }));
  const out = await program.run({
    logits: hostTensor('float32', x, [n, v]),
    t: hostTensor('int32', targets, [n]),
    mask: hostTensor('float32', mask, [n]),
  });
  // The plain formulation in float64: -log softmax(x)[t], averaged over the masked rows; its
  // gradient (softmax(x) - onehot(t)) · mask / count.
  const count = mask.reduce((a, b) => a + b, 0);
  let want = 0;
  const wantGrad = new Float64Array(n * v);
  for (let i = 0; i < n; i++) {
    const row = Array.from(x.subarray(i * v, (i + 1) * v));
    const top = Math.max(...row);
    const total = row.reduce((a, z) => a + Math.exp(z - top), 0);
    const logProb = (z: number) => z - top - Math.log(total);
    want -= (mask[i] * logProb(row[targets[i]])) / count;
    row.forEach((z, j) => {
      wantGrad[i * v + j] = ((Math.exp(logProb(z)) - (j === targets[i] ? 1 : 0)) * mask[i]) / count;
    });
  }
  const got = (out.loss.data as Float32Array)[0];
  assert.ok(Math.abs(got - want) <= 1e-5 * Math.abs(want), `loss ${got} vs ${want}`);
  const gotGrad = out.g.data as Float32Array;
  wantGrad.forEach((w, k) => assert.ok(Math.abs(gotGrad[k] - w) <= 1e-6, `grad[${k}]: ${gotGrad[k]} vs ${w}`));
  await program.release();
});

test("each layer's weight gradient is made before the backward flows on to the layer below", async () => {
  // Two linear layers: the gradient reaching layer 1 (and so dW1) must wait for dW2, and still be
  // the same values; without that ordering a runtime may hold every layer's inputs to the end.
  const x = input('x', 'float32', [3, 4]),
    w1 = input('w1', 'float32', [4, 5]),
    w2 = input('w2', 'float32', [5, 2]);
  const loss = ops.sum(ops.sigmoid(ops.matmul(ops.sigmoid(ops.matmul(x, w1)), w2)));
  const [dw1, dw2] = grad(loss, [w1, w2]);
  assert.ok(topoSort([dw1]).includes(dw2), 'dW1 is computed after dW2');
  assert.ok(!topoSort([dw2]).includes(dw1), 'dW2 does not wait for dW1');
  const rng = new Rng(2);
  const feeds = Object.fromEntries(
    [x, w1, w2].map((t) => {
      const dims = t.shape as number[];
      return [
        t.name!,
        hostTensor(
          'float32',
          Float32Array.from({ length: dims[0] * dims[1] }, () => rng.normal()),
          dims,
        ),
      ];
    }),
  );
  const out = await (await (await Runtime.create({ provider: 'cpu' })).load(toOnnx({ dw1, dw2 }, 'g'))).run(feeds);
  // The same gradients by hand: h = σ(x W1), y = σ(h W2), dy = y(1-y), dW2 = hᵀ dy, dh = dy W2ᵀ, dW1 = xᵀ (dh h(1-h)).
  const m = (name: string) => feeds[name].data as Float32Array;
  const mm = (a: number[][], b: number[][]) =>
    a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
  const rows = (d: Float32Array, c: number) =>
    Array.from({ length: d.length / c }, (_, i) => Array.from(d.subarray(i * c, (i + 1) * c)));
  const tr = (a: number[][]) => a[0].map((_, j) => a.map((r) => r[j]));
  const sig = (a: number[][]) => a.map((r) => r.map((v) => 1 / (1 + Math.exp(-v))));
  const [X, W1, W2] = [rows(m('x'), 4), rows(m('w1'), 5), rows(m('w2'), 2)];
  const h = sig(mm(X, W1)),
    y = sig(mm(h, W2));
  const dy = y.map((r) => r.map((v) => v * (1 - v)));
  const dh = mm(dy, tr(W2)).map((r, i) => r.map((v, j) => v * h[i][j] * (1 - h[i][j])));
  for (const [got, want] of [
    [out.dw2.data, mm(tr(h), dy).flat()],
    [out.dw1.data, mm(tr(X), dh).flat()],
  ] as const)
    want.forEach((v, i) => assert.ok(Math.abs((got as Float32Array)[i] - v) < 1e-5 * (1 + Math.abs(v)), `${i}`));
});

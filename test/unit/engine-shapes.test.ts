import { test } from 'node:test';
import * as protobuf from 'protobufjs';
import assert from 'node:assert/strict';
import { grad } from '../../src/engine/autodiff';
import * as nn from '../../src/engine/nn';
import * as ops from '../../src/engine/ops';
import { toOnnx } from '../../src/engine/onnx';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { DType, Shape, ShapeError, constant, input } from '../../src/engine/tensor';

const f32 = (shape: Shape, name = 'x') => input(name, 'float32', shape);
const t = (dtype: DType, shape: Shape, name = 'x') => input(name, dtype, shape);

// [what is wrong, the build that must throw, what the message must say]
const errors: [string, () => unknown, RegExp][] = [
  [
    'matmul inner dims differ',
    () => ops.matmul(f32([2, 3]), f32([4, 5])),
    /^matmul: inner dims differ in \[2, 3\] @ \[4, 5\]$/,
  ],
  ['matmul of a vector', () => ops.matmul(f32([3]), f32([3, 2])), /^matmul: .*rank ≥ 2.*\[3\] @ \[3, 2\]/],
  [
    'add that does not broadcast',
    () => ops.add(f32([2, 3]), f32([4])),
    /^Add: shapes \[2, 3\] and \[4\] do not broadcast/,
  ],
  [
    'mul of different symbolic dims',
    () => ops.mul(f32(['B', 3]), f32(['T', 3])),
    /^Mul: shapes \[B, 3\] and \[T, 3\] do not broadcast \(axis 0: B vs T\)/,
  ],
  [
    'where whose condition does not broadcast',
    () => ops.where(t('bool', [3]), f32([2, 4]), 0),
    /^where: shapes \[3\] and \[2, 4\]/,
  ],
  [
    'reshape to a different size',
    () => ops.reshape(f32([2, 3]), [4, 2]),
    /^reshape .*: cannot reshape \[2, 3\] to \[4, 2\]$/,
  ],
  [
    'reshape with -1 that does not divide',
    () => ops.reshape(f32([2, 3]), [4, -1]),
    /^reshape .*: cannot reshape \[2, 3\] to \[4, -1\]$/,
  ],
  [
    'reshape of a symbolic size to fixed dims',
    () => ops.reshape(f32(['B', 3]), [3, 2]),
    /^reshape .*: cannot reshape \[B, 3\] to \[3, 2\]$/,
  ],
  [
    'reshape with two -1s',
    () => ops.reshape(f32([2, 3]), [-1, -1]),
    /^reshape .*\[2, 3\].*: more than one -1 in \[-1, -1\]$/,
  ],
  ['float32 + int32', () => ops.add(f32([2, 3]), t('int32', [2, 3], 'i')), /^Add: dtypes differ \(float32, int32\)$/],
  [
    'float32 @ float64',
    () => ops.matmul(f32([2, 3]), t('float64', [3, 2], 'w')),
    /^matmul: dtypes differ \(float32, float64\)$/,
  ],
  [
    'concat of float32 and int64',
    () => ops.concat([f32([2]), t('int64', [2], 'i')], 0),
    /^concat: dtypes differ \(float32, int64\)$/,
  ],
  [
    'where with a float condition',
    () => ops.where(f32([2, 3], 'c'), f32([2, 3]), 0),
    /^where: condition must be bool, got .*<float32>\[2, 3\]$/,
  ],
  [
    'where with an int condition',
    () => ops.where(t('int64', [3], 'c'), f32([3]), 0),
    /^where: condition must be bool, got .*<int64>\[3\]$/,
  ],
  ['sum over axis 2 of a matrix', () => ops.sum(f32([2, 3]), 2), /^sum: axis 2 is out of range for rank 2$/],
  ['mean over axis -3 of a matrix', () => ops.mean(f32([2, 3]), [0, -3]), /^mean: axis -3 is out of range for rank 2$/],
  ['sum over a repeated axis', () => ops.sum(f32([2, 3]), [1, -1]), /^sum: repeated axis in \[1,-1\]$/],
  [
    'softmax over axis 3 of rank 3',
    () => ops.softmax(f32([2, 3, 4]), 3),
    /^softmax: axis 3 is out of range for rank 3$/,
  ],
  [
    'slice on axis -4 of rank 3',
    () => ops.slice(f32([2, 3, 4]), -4, 0, 1),
    /^slice: axis -4 is out of range for rank 3$/,
  ],
  [
    'transpose that is not a permutation',
    () => ops.transpose(f32([2, 3, 4]), [0, 0, 1]),
    /^transpose: \[0,0,1\] is not a permutation of 3 axes$/,
  ],
  [
    'concat of shapes differing off the axis',
    () => ops.concat([f32([2, 3]), f32([3, 3], 'y')], 1),
    /^concat: shapes \[2, 3\], \[3, 3\] differ off axis 1$/,
  ],
  [
    'gather with float indices',
    () => ops.gather(f32([5, 3]), f32([4], 'i')),
    /^gather: indices must be int32 or int64, got .*<float32>\[4\]$/,
  ],
  [
    'gatherElements with bool indices',
    () => ops.gatherElements(f32([2, 3]), t('bool', [2, 3], 'i'), 1),
    /^gatherElements: indices must be int32 or int64, got .*<bool>\[2, 3\]$/,
  ],
  [
    'gatherElements with indices of another rank',
    () => ops.gatherElements(f32([2, 3]), t('int64', [2], 'i'), 1),
    /^gatherElements: indices .*<int64>\[2\] must have the rank of .*<float32>\[2, 3\]$/,
  ],
  [
    'tokenLogprobs with targets of the wrong rank',
    () => nn.tokenLogprobs(f32([2, 3, 5]), t('int64', [2, 3, 1], 'y')),
    /^tokenLogprobs: targets .*\[2, 3, 1\] must drop the last axis of logits .*\[2, 3, 5\]$/,
  ],
  [
    'softmax of ints',
    () => ops.softmax(t('int32', [2, 3]), -1),
    /^softmax: needs a float tensor, got .*<int32>\[2, 3\]$/,
  ],
  ['input with a negative dim', () => f32([2, -1]), /^input "x": invalid dimension -1$/],
  [
    'constant that does not fill its shape',
    () => constant(Float32Array.of(1, 2, 3), 'float32', [2, 2]),
    /^constant: 3 values do not fill shape \[2, 2\]$/,
  ],
  [
    'two inputs with one name, at emission',
    () => toOnnx({ y: ops.add(f32([2]), f32([2])) }),
    /^two different inputs are named "x"$/,
  ],
  [
    'an output named like an input, at emission',
    () => toOnnx({ x: ops.neg(f32([2])) }),
    /^output "x" has the name of an input$/,
  ],
];

for (const [name, build, message] of errors) {
  test(`build-time error: ${name}`, () => {
    assert.throws(build, (e: unknown) =>
      e instanceof ShapeError && message.test(e.message) ? true : assert.fail(`got: ${e}`),
    );
  });
}

test("a graph with a symbolic batch dim 'B' runs at two batch sizes with the right values", async () => {
  const T = 4,
    D = 3,
    E = 2;
  const x = f32(['B', T, D]),
    w = f32([D, E], 'w');
  const rows = ops.reshape(x, [-1, D]);
  assert.deepEqual(rows.shape, [`${T}*B`, D]);
  const y = ops.reshape(ops.matmul(rows, w), [-1, T, E]);
  assert.deepEqual(y.shape, ['B', T, E]);
  const yNamed = ops.reshape(ops.matmul(rows, w), ['B', T, E]); // the same, with B read from x at run time
  const z = y.add(ops.sum(x, -1, true)); // [B, T, E] + [B, T, 1]: the same B on both sides
  const loss = ops.mean(z.mul(z));
  const [gw, gx] = grad(loss, [w, x]);
  assert.deepEqual(gx.shape, ['B', T, D]);
  const outputs = { z, named: yNamed.sub(y), meanB: ops.mean(z, 0), meanBT: ops.mean(z, [0, 1]), loss, gw, gx };
  const rt = await Runtime.create({ provider: 'cpu', threads: 1 });
  const program = await rt.load(toOnnx(outputs));
  const wData = Float32Array.from([0.5, -1, 2, 0.25, -0.5, 1.5]);

  for (const B of [2, 5]) {
    const xData = Float32Array.from({ length: B * T * D }, (_, i) => Math.sin(i + 1));
    const got = await program.run({
      x: hostTensor('float32', xData, [B, T, D]),
      w: hostTensor('float32', wData, [D, E]),
    });
    // Plain TS: z[b,t,e] = sum_d x[b,t,d] w[d,e] + sum_d x[b,t,d]; loss = mean(z²).
    const X = (b: number, s: number, d: number) => xData[(b * T + s) * D + d];
    const zRef: number[] = [];
    for (let b = 0; b < B; b++)
      for (let s = 0; s < T; s++)
        for (let e = 0; e < E; e++) {
          let acc = 0;
          for (let d = 0; d < D; d++) acc += X(b, s, d) * (wData[d * E + e] + 1);
          zRef.push(acc);
        }
    const n = B * T * E,
      Z = (b: number, s: number, e: number) => zRef[(b * T + s) * E + e];
    const meanB = Array.from(
      { length: T * E },
      (_, k) => [...Array(B).keys()].reduce((a, b) => a + zRef[b * T * E + k], 0) / B,
    );
    const meanBT = Array.from(
      { length: E },
      (_, e) => zRef.filter((_, k) => k % E === e).reduce((a, v) => a + v, 0) / (B * T),
    );
    const lossRef = zRef.reduce((a, v) => a + v * v, 0) / n;
    const gwRef = Array.from({ length: D * E }, (_, k) => {
      let acc = 0;
      for (let b = 0; b < B; b++)
        for (let s = 0; s < T; s++) acc += (2 / n) * Z(b, s, k % E) * X(b, s, Math.floor(k / E));
      return acc;
    });
    const gxRef = Array.from({ length: B * T * D }, (_, k) => {
      const b = Math.floor(k / (T * D)),
        s = Math.floor(k / D) % T,
        d = k % D;
      let acc = 0;
      for (let e = 0; e < E; e++) acc += (2 / n) * Z(b, s, e) * (wData[d * E + e] + 1);
      return acc;
    });
    const want: Record<string, [number[], number[]]> = {
      z: [[B, T, E], zRef],
      named: [[B, T, E], zRef.map(() => 0)],
      meanB: [[T, E], meanB],
      meanBT: [[E], meanBT],
      loss: [[], [lossRef]],
      gw: [[D, E], gwRef],
      gx: [[B, T, D], gxRef],
    };
    for (const [name, [dims, ref]] of Object.entries(want)) {
      assert.deepEqual(got[name].dims, dims, `${name} dims at B=${B}`);
      const v = got[name].data as Float32Array;
      ref.forEach((r, i) =>
        assert.ok(Math.abs(v[i] - r) <= 1e-5 * Math.max(1, Math.abs(r)), `${name}[${i}] at B=${B}: ${v[i]} vs ${r}`),
      );
    }
  }
  await program.release();
});

/** The declared shapes (value_info) of an emitted model, read back with the fields of onnx.proto. */
function declaredShapes(bytes: Uint8Array): Map<string, (number | string)[]> {
  const message = (fields: Record<string, [string, number, string?]>) => ({
    fields: Object.fromEntries(
      Object.entries(fields).map(([k, [type, id, rule]]) => [k, rule ? { type, id, rule } : { type, id }]),
    ),
  });
  const root = protobuf.Root.fromJSON({
    nested: {
      Model: message({ graph: ['Graph', 7] }),
      Graph: message({ valueInfo: ['ValueInfo', 13, 'repeated'] }),
      ValueInfo: message({ name: ['string', 1], type: ['Type', 2] }),
      Type: message({ tensorType: ['TensorType', 1] }),
      TensorType: message({ shape: ['Shape', 2] }),
      Shape: message({ dim: ['Dim', 1, 'repeated'] }),
      Dim: message({ dimValue: ['int64', 1], dimParam: ['string', 2] }),
    },
  });
  const model = root.lookupType('Model').toObject(root.lookupType('Model').decode(bytes), { longs: Number }) as {
    graph: {
      valueInfo: {
        name: string;
        type: { tensorType: { shape: { dim: { dimValue?: number; dimParam?: string }[] } } };
      }[];
    };
  };
  return new Map(
    model.graph.valueInfo.map((v) => [v.name, v.type.tensorType.shape.dim.map((d) => d.dimParam ?? d.dimValue!)]),
  );
}

test("every node's output shape is declared in the model, symbolic sizes by name", () => {
  const x = f32(['B', 4, 3]);
  const rows = ops.reshape(x, [-1, 3]);
  const scaled = rows.mul(2);
  const y = ops.reshape(ops.relu(scaled), ['B', 4, 3]);
  const declared = declaredShapes(toOnnx({ y }).bytes);
  assert.deepEqual(declared.get(`Reshape_${rows.id}`), ['4*B', 3]);
  assert.deepEqual(declared.get(`Mul_${scaled.id}`), ['4*B', 3]);
  assert.ok(!declared.has('y'), 'a graph output is declared as an output, not again');
  assert.ok(!declared.has('x'), 'nor is an input');
});

test('slicing off what a concatenation appended gives back the symbolic dim it extended', () => {
  const joined = ops.concat([f32(['B', 'P']), f32(['B', 1], 'y')], 1);
  assert.deepEqual(joined.shape, ['B', 'P+1']);
  assert.deepEqual(ops.slice(joined, 1, 0, -1).shape, ['B', 'P']);
  assert.deepEqual(ops.slice(joined, 1, -1).shape, ['B', 1]);
  assert.deepEqual(ops.slice(joined, 1, 0, -2).shape, ['B', 'P+1-2']);
  assert.deepEqual(ops.slice(f32(['B', 'P+11']), 1, 0, -1).shape, ['B', 'P+11-1']);
});

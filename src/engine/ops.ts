/* eslint-disable max-lines -- every primitive op beside its VJP; split, the files would import each other */
/**
 * Primitive ops. Each op is its forward (an ONNX node with a build-time shape rule) and, for
 * differentiable ops, its vector-Jacobian product right beside it: given the gradient `g` of the
 * loss with respect to the op's output `y`, the gradients with respect to `y.inputs`.
 * Composite functions (layer norm, log-softmax, cross-entropy...) live in ./nn.ts.
 */
import { broadcastShapes, normAxes, normAxis, productDim, reshapeShape, sliceDim } from './shape';
import { Attrs, DType, Dim, Shape, ShapeError, Tensor, constant, formatShape, scalar, typedArray } from './tensor';

export type Vjp = (g: Tensor, y: Tensor) => (Tensor | undefined)[];
const vjps = new Map<string, Vjp>();

/** The VJP rule of an op type, or undefined for ops that carry no gradient. */
export function vjpOf(op: string): Vjp | undefined {
  return vjps.get(op);
}

function node(op: string, inputs: Tensor[], dtype: DType, shape: Shape, attrs: Attrs = {}, meta = {}): Tensor {
  return new Tensor(op, inputs, dtype, shape, attrs, meta);
}

function requireFloat(op: string, ...xs: Tensor[]): void {
  for (const x of xs) if (!x.isFloat) throw new ShapeError(`${op}: needs a float tensor, got ${x}`);
}

function sameDtype(op: string, xs: Tensor[]): void {
  const bad = xs.find((x) => x.dtype !== xs[0].dtype);
  if (bad) throw new ShapeError(`${op}: dtypes differ (${xs.map((x) => x.dtype).join(', ')})`);
}

/** Turns a number operand into a scalar constant of its partner's dtype. */
function lift(a: Tensor | number, like: Tensor | number): Tensor {
  if (a instanceof Tensor) return a;
  return scalar(a, like instanceof Tensor ? like.dtype : 'float32');
}

// ---------------------------------------------------------------- shape helpers used by VJPs

/** The shape of x as an int64 tensor (optionally only axes [start, end)). */
export function shapeOf(x: Tensor, start = 0, end = x.rank): Tensor {
  const attrs: Attrs = start === 0 && end === x.rank ? {} : { start, end };
  return node('Shape', [x], 'int64', [end - start], attrs);
}

/** A shape as an int64 tensor; symbolic dims are read at run time from a tensor that has them. */
function shapeTensor(dims: Shape, from: Tensor): Tensor {
  if (dims.every((d) => typeof d === 'number')) return constant(typedArray('int64', dims as number[]), 'int64');
  const pieces = dims.map((d) =>
    typeof d === 'number' ? constant(typedArray('int64', [d]), 'int64') : symbolSize(d, from),
  );
  return concat(pieces, 0);
}

/** The run-time size of a symbolic dim, read from `x` or the nearest ancestor that carries it. */
function symbolSize(sym: string, x: Tensor): Tensor {
  const seen = new Set<number>();
  const queue = [x];
  while (queue.length) {
    const t = queue.shift()!;
    const axis = t.shape.indexOf(sym);
    if (axis >= 0) return shapeOf(t, axis, axis + 1);
    for (const i of t.inputs)
      if (!seen.has(i.id)) {
        seen.add(i.id);
        queue.push(i);
      }
  }
  const parts = sym.split('*');
  if (parts.length > 1)
    return parts
      .map((p) => (/^\d+$/.test(p) ? constant(typedArray('int64', [Number(p)]), 'int64') : symbolSize(p, x)))
      .reduce((a, b) => mul(a, b));
  throw new ShapeError(`size "${sym}" is not known from the inputs of ${x}`);
}

/** Sums g down to x's shape, undoing broadcasting. */
export function unbroadcast(g: Tensor, x: Tensor): Tensor {
  const lead = g.rank - x.rank;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (x.shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return axes.length ? reshapeLike(sum(g, axes, true), x) : g;
}

/**
 * A Reshape target from `from` to `to`, as a constant where the symbolic dims allow: 0 keeps the
 * input's dim at that position, one -1 takes the rest. Otherwise read at run time from `x`.
 */
function reshapeTarget(from: Shape, to: Shape, runtime: () => Tensor): Tensor {
  if (to.some((d) => d === 0)) return runtime();
  const dims = to.map((d, i) => (typeof d === 'number' ? d : from[i] === d ? 0 : undefined));
  const unknown = dims.filter((d) => d === undefined).length;
  if (unknown > 1) return runtime();
  return constant(
    typedArray(
      'int64',
      dims.map((d) => d ?? -1),
    ),
    'int64',
  );
}

/** An Expand target from `from` to `to`, constant where possible (1 keeps the input's dim). */
function expandTarget(from: Shape, to: Shape, runtime: () => Tensor): Tensor {
  const lead = to.length - from.length;
  const dims = to.map((d, i) => (i >= lead && from[i - lead] === d ? 1 : typeof d === 'number' ? d : undefined));
  if (dims.some((d) => d === undefined)) return runtime();
  return constant(typedArray('int64', dims as number[]), 'int64');
}

/** Reshapes t to the (run-time) shape of x. */
export function reshapeLike(t: Tensor, x: Tensor): Tensor {
  return node('Reshape', [t, reshapeTarget(t.shape, x.shape, () => shapeOf(x))], t.dtype, x.shape);
}

/** Broadcasts t to the (run-time) shape of x. */
export function expandLike(t: Tensor, x: Tensor): Tensor {
  return node(
    'Expand',
    [t, expandTarget(t.shape, x.shape, () => shapeOf(x))],
    t.dtype,
    broadcastShapes('expand', t.shape, x.shape),
  );
}

/**
 * x, but computed only once `g` is: x reshaped to g's run-time shape (the same shape), which orders
 * work after g without copying x (onnxruntime's Reshape is a view). No gradient flows to g.
 */
export function after(x: Tensor, g: Tensor): Tensor {
  if (x.shape.join() !== g.shape.join()) throw new ShapeError(`after: ${x} and ${g} differ in shape`);
  return node('Reshape', [x, shapeOf(g)], x.dtype, x.shape);
}

export function zerosLike(x: Tensor): Tensor {
  return expandLike(scalar(0, x.dtype), x);
}

// ---------------------------------------------------------------- elementwise, one input

export function unary(op: string, vjp?: Vjp) {
  if (vjp) vjps.set(op, vjp);
  return (x: Tensor): Tensor => node(op, [x], x.dtype, x.shape);
}
const x0 = (y: Tensor) => y.inputs[0];

export const neg = unary('Neg', (g) => [neg(g)]);
export const exp = unary('Exp', (g, y) => [g.mul(y)]);
export const log = unary('Log', (g, y) => [g.div(x0(y))]);
export const sqrt = unary('Sqrt', (g, y) => [g.div(y.mul(2))]);
export const reciprocal = unary('Reciprocal', (g, y) => [neg(g.mul(y).mul(y))]);
export const tanh = unary('Tanh', (g, y) => [g.mul(sub(1, y.mul(y)))]);
export const sigmoid = unary('Sigmoid', (g, y) => [g.mul(y).mul(sub(1, y))]);
export const erf = unary('Erf', (g, y) => [g.mul(exp(neg(x0(y).mul(x0(y))))).mul(2 / Math.sqrt(Math.PI))]);
export const abs = unary('Abs', (g, y) => [g.mul(cast(greater(x0(y), 0), g.dtype).sub(cast(less(x0(y), 0), g.dtype)))]);
export const relu = unary('Relu', (g, y) => [where(greater(x0(y), 0), g, 0)]);
export const sign = unary('Sign');
export const not = unary('Not');

/** Passes x through but stops gradients (Identity with no VJP). */
export const detach = unary('Identity');

/** A VJP given for one tensor rather than derived: its gradients go to `xs`, not to its inputs. */
export interface CustomVjp {
  xs: Tensor[];
  vjp: Vjp;
}

/**
 * `y` (computed from `xs` by primitives), differentiated by `vjp` instead of through those
 * primitives: for composites whose gradient is much cheaper written out (log-sum-exp's is the
 * softmax). An Identity node carries it; onnxruntime removes those when it loads the graph.
 */
export function withVjp(y: Tensor, xs: Tensor[], vjp: Vjp): Tensor {
  const custom: CustomVjp = { xs, vjp };
  return node('Identity', [y], y.dtype, y.shape, {}, { custom });
}

export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  return node('Cast', [x], dtype, x.shape, { to: ONNX_DTYPE[dtype] });
}
vjps.set('Cast', (g, y) => [x0(y).isFloat ? cast(g, x0(y).dtype) : undefined]);

// ---------------------------------------------------------------- elementwise, two or more inputs

function binary(op: string, vjp?: Vjp, out?: DType) {
  if (vjp) vjps.set(op, vjp);
  return (a: Tensor | number, b: Tensor | number): Tensor => {
    let x = lift(a, b),
      y = lift(b, a);
    sameDtype(op, [x, y]);
    const shape = broadcastShapes(op, x.shape, y.shape);
    [x, y] = [unexpanded(x, y, shape), unexpanded(y, x, shape)];
    return node(op, [x, y], out ?? x.dtype, shape);
  };
}

/**
 * x without an Expand in front of it when broadcasting against `other` gives the same `shape`
 * anyway: VJPs of reductions expand their gradient, and the op using it broadcasts for free.
 */
function unexpanded(x: Tensor, other: Tensor, shape: Shape): Tensor {
  if (x.op !== 'Expand') return x;
  const inner = x.inputs[0],
    s = broadcastShapes('expand', inner.shape, other.shape);
  return s.length === shape.length && s.every((d, i) => d === shape[i]) ? inner : x;
}
const ab = (y: Tensor) => [y.inputs[0], y.inputs[1]];

export const add = binary('Add', (g, y) => ab(y).map((x) => unbroadcast(g, x)));
export const sub = binary('Sub', (g, y) => {
  const [a, b] = ab(y);
  return [unbroadcast(g, a), unbroadcast(neg(g), b)];
});
export const mul = binary('Mul', (g, y) => {
  const [a, b] = ab(y);
  return [unbroadcast(g.mul(b), a), unbroadcast(g.mul(a), b)];
});
export const div = binary('Div', (g, y) => {
  const [a, b] = ab(y);
  return [unbroadcast(g.div(b), a), unbroadcast(neg(g.mul(y).div(b)), b)];
});
export const pow = binary('Pow', (g, y) => {
  const [a, b] = ab(y);
  return [unbroadcast(g.mul(b).mul(pow(a, b.sub(1))), a), unbroadcast(g.mul(y).mul(log(a)), b)];
});
/** Elementwise maximum; on ties the gradient goes to the first operand. */
export const maximum = binary('Max', (g, y) => {
  const [a, b] = ab(y),
    first = greaterOrEqual(a, b);
  return [unbroadcast(where(first, g, 0), a), unbroadcast(where(first, 0, g), b)];
});
/** Elementwise minimum; on ties the gradient goes to the first operand. */
export const minimum = binary('Min', (g, y) => {
  const [a, b] = ab(y),
    first = lessOrEqual(a, b);
  return [unbroadcast(where(first, g, 0), a), unbroadcast(where(first, 0, g), b)];
});

export const equal = binary('Equal', undefined, 'bool');
export const less = binary('Less', undefined, 'bool');
export const greater = binary('Greater', undefined, 'bool');
export const lessOrEqual = binary('LessOrEqual', undefined, 'bool');
export const greaterOrEqual = binary('GreaterOrEqual', undefined, 'bool');
export const and = binary('And', undefined, 'bool');
export const or = binary('Or', undefined, 'bool');

/** cond ? a : b, elementwise with broadcasting. */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  if (cond.dtype !== 'bool') throw new ShapeError(`where: condition must be bool, got ${cond}`);
  const x = lift(a, b),
    y = lift(b, a);
  sameDtype('where', [x, y]);
  return node('Where', [cond, x, y], x.dtype, broadcastShapes('where', cond.shape, x.shape, y.shape));
}
vjps.set('Where', (g, y) => {
  const [cond, a, b] = y.inputs;
  return [undefined, unbroadcast(where(cond, g, 0), a), unbroadcast(where(cond, 0, g), b)];
});

/** Clamps x to [lo, hi]; the gradient passes where x is inside the range. */
export function clip(x: Tensor, lo: number, hi: number): Tensor {
  return node('Clip', [x, scalar(lo, x.dtype), scalar(hi, x.dtype)], x.dtype, x.shape);
}
vjps.set('Clip', (g, y) => {
  const [x, lo, hi] = y.inputs;
  return [where(and(greaterOrEqual(x, lo), lessOrEqual(x, hi)), g, 0)];
});

// ---------------------------------------------------------------- matmul

/** Batched matrix product a [..., M, K] @ b [..., K, N], batch dims broadcast. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  sameDtype('matmul', [a, b]);
  requireFloat('matmul', a);
  if (a.rank < 2 || b.rank < 2)
    throw new ShapeError(`matmul: operands need rank ≥ 2, got ${formatShape(a.shape)} @ ${formatShape(b.shape)}`);
  const [m, k] = a.shape.slice(-2),
    [k2, n] = b.shape.slice(-2);
  if (k !== k2) throw new ShapeError(`matmul: inner dims differ in ${formatShape(a.shape)} @ ${formatShape(b.shape)}`);
  const batch = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  return node('MatMul', [a, b], a.dtype, [...batch, m, n]);
}
vjps.set('MatMul', (g, y) => {
  const [a, b] = ab(y);
  if (b.rank === 2) {
    // A shared weight: read as it is stored, and one [K, rows] @ [rows, N] product for its gradient
    // instead of a batched one and a sum.
    const rows = a.rank === 2 ? a : a.reshape([-1, a.shape[a.rank - 1]]);
    const gRows = g.rank === 2 ? g : g.reshape([-1, g.shape[g.rank - 1]]);
    return [dense(g, b, true), gemm(rows, gRows, true, false)];
  }
  return [unbroadcast(matmul(g, swapLast(b)), a), unbroadcast(matmul(swapLast(a), g), b)];
});

/**
 * A 2-D matrix product op(a) @ op(b) as one ONNX Gemm, op transposing where `transA`/`transB` say:
 * each operand is read in the layout it is stored in, so no Transpose of a weight is ever made
 * (x Wᵀ for a [out, in] weight, and every product of the backward pass).
 */
export function gemm(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  sameDtype('gemm', [a, b]);
  requireFloat('gemm', a);
  if (a.rank !== 2 || b.rank !== 2)
    throw new ShapeError(`gemm: operands need rank 2, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  const [m, k] = transA ? [a.shape[1], a.shape[0]] : a.shape,
    [k2, n] = transB ? [b.shape[1], b.shape[0]] : b.shape;
  if (k !== k2 && typeof k === 'number' && typeof k2 === 'number')
    throw new ShapeError(`gemm: inner dims differ in ${formatShape(a.shape)} @ ${formatShape(b.shape)}`);
  return node('Gemm', [a, b], a.dtype, [m, n], { transA: transA ? 1 : 0, transB: transB ? 1 : 0 });
}
vjps.set('Gemm', (g, y) => {
  const [a, b] = ab(y),
    tA = y.attrs.transA === 1,
    tB = y.attrs.transB === 1;
  // C = op(A) op(B): dop(A) = g op(B)ᵀ and dop(B) = op(A)ᵀ g, each laid out as its operand is stored.
  const ga = tA ? gemm(b, g, tB, true) : gemm(g, b, false, !tB);
  const gb = tB ? gemm(g, a, true, tA) : gemm(a, g, !tA, false);
  return [ga, gb];
});

/**
 * x [..., K] times a weight stored [K, N] (or [N, K] with `transposed`, torch.nn.Linear's layout),
 * as one Gemm over the rows of x: [..., N].
 */
export function dense(x: Tensor, weight: Tensor, transposed = false): Tensor {
  if (weight.rank !== 2) throw new ShapeError(`dense: the weight must be a matrix, got ${weight}`);
  const k = x.shape[x.rank - 1];
  const n = weight.shape[transposed ? 0 : 1];
  const lead = x.shape.slice(0, -1);
  // Gemm is 2-D: x's leading dims are flattened and restored, which needs a run-time shape (an
  // int64 Concat, which GPU providers do not run) when more than one of them is symbolic; then
  // MatMul takes x as it is.
  if (x.rank > 2 && lead.filter((d) => typeof d !== 'number').length > 1)
    return matmul(x, transposed ? swapLast(weight) : weight);
  const rows = x.rank === 2 ? x : reshape(x, [-1, k]);
  const y = gemm(rows, weight, false, transposed);
  return x.rank === 2 ? y : reshape(y, [...lead, n]);
}

function swapLast(x: Tensor): Tensor {
  const perm = [...x.shape.keys()];
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return transpose(x, perm);
}

// ---------------------------------------------------------------- reductions

function reducedShape(shape: Shape, axes: number[], keepdims: boolean): Dim[] {
  return shape.flatMap((d, i) => (axes.includes(i) ? (keepdims ? [1] : []) : [d]));
}

/** Sum over axes (all axes when omitted). */
export function sum(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  const ax = normAxes('sum', axes, x.rank);
  if (ax.length === 0) return x;
  const axesT = constant(typedArray('int64', ax), 'int64');
  return node(
    'ReduceSum',
    [x, axesT],
    x.dtype,
    reducedShape(x.shape, ax, keepdims),
    { keepdims: keepdims ? 1 : 0 },
    { axes: ax },
  );
}
vjps.set('ReduceSum', (g, y) => {
  const x = x0(y),
    axes = y.meta.axes as number[];
  const kept = y.attrs.keepdims ? g : g.reshape(reducedShape(x.shape, axes, true));
  return [expandLike(kept, x), undefined];
});

/** Sum of squares over axes (all when omitted), one pass that writes no x² (ONNX ReduceSumSquare). */
export function sumSquares(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  return reduction('ReduceSumSquare', x, normAxes('sumSquares', axes, x.rank), keepdims);
}

/** A reduction whose axes are an attribute (the ONNX opset-13 form of ReduceSumSquare and ReduceMax). */
function reduction(op: string, x: Tensor, axes: number[], keepdims: boolean): Tensor {
  return node(op, [x], x.dtype, reducedShape(x.shape, axes, keepdims), { axes, keepdims: keepdims ? 1 : 0 }, { axes });
}
vjps.set('ReduceSumSquare', (g, y) => {
  const x = x0(y),
    kept = y.attrs.keepdims ? g : g.reshape(reducedShape(x.shape, y.meta.axes as number[], true));
  return [x.mul(kept).mul(2)];
});

/** Mean over axes (all axes when omitted). */
export function mean(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  requireFloat('mean', x);
  const ax = normAxes('mean', axes, x.rank);
  const count = ax.map((a) => x.shape[a]);
  const n = count.every((d) => typeof d === 'number')
    ? scalar(
        (count as number[]).reduce((p, d) => p * d, 1),
        x.dtype,
      )
    : symbolicCount(String(productDim(count)), x);
  return sum(x, ax, keepdims).div(n);
}

/** A symbolic size as a float scalar, without int64 arithmetic (Expand ones to the size, sum). */
function symbolicCount(sym: string, x: Tensor): Tensor {
  return sym
    .split('*')
    .map((p) =>
      /^\d+$/.test(p)
        ? scalar(Number(p), x.dtype)
        : sum(node('Expand', [scalar(1, x.dtype), symbolSize(p, x)], x.dtype, [p])),
    )
    .reduce((a, b) => a.mul(b));
}

/** Max over axes; the gradient is shared equally among tied maxima. */
export function max(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  return reduction('ReduceMax', x, normAxes('max', axes, x.rank), keepdims);
}
vjps.set('ReduceMax', (g, y) => {
  const x = x0(y),
    keptShape = reducedShape(x.shape, y.meta.axes as number[], true);
  const isMax = cast(equal(x, y.reshape(keptShape)), x.dtype);
  const share = isMax.div(sum(isMax, y.meta.axes as number[], true));
  return [expandLike(g.reshape(keptShape), x).mul(share)];
});

/** Index of the max along an axis (int64; no gradient). */
export function argmax(x: Tensor, axis: number, keepdims = false): Tensor {
  const a = normAxis('argmax', axis, x.rank);
  return node('ArgMax', [x], 'int64', reducedShape(x.shape, [a], keepdims), { axis: a, keepdims: keepdims ? 1 : 0 });
}

/** Softmax along one axis. */
export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat('softmax', x);
  const a = normAxis('softmax', axis, x.rank);
  return node('Softmax', [x], x.dtype, x.shape, { axis: a }, { axis: a });
}
vjps.set('Softmax', (g, y) => {
  const gy = g.mul(y);
  return [gy.sub(y.mul(sum(gy, y.meta.axis as number, true)))];
});

/**
 * LayerNorm over the last axis as one ONNX LayerNormalization node:
 * (x - mean) / sqrt(var + eps) * weight + bias, weight and bias [D].
 */
export function layerNormalization(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  requireFloat('layerNormalization', x);
  sameDtype('layerNormalization', [x, weight, bias]);
  const d = x.shape[x.rank - 1];
  for (const t of [weight, bias]) {
    if (t.rank !== 1 || t.shape[0] !== d) throw new ShapeError(`layerNormalization: ${t} must be [${d}] for ${x}`);
  }
  return node('LayerNormalization', [x, weight, bias], x.dtype, x.shape, { axis: -1, epsilon: eps }, { eps });
}
vjps.set('LayerNormalization', (g, y) => {
  const [x, weight, bias] = y.inputs;
  // x̂ = (x - mean) · r with r = 1 / sqrt(var + eps), recomputed (two-pass) rather than kept.
  const xc = x.sub(mean(x, -1, true));
  const r = reciprocal(sqrt(mean(xc.mul(xc), -1, true).add(y.meta.eps as number)));
  const xHat = xc.mul(r);
  // dx = r · (dx̂ - mean(dx̂) - x̂ · mean(dx̂ · x̂)), with dx̂ = g · weight
  const gHat = g.mul(weight);
  const gx = r.mul(gHat.sub(mean(gHat, -1, true)).sub(xHat.mul(mean(gHat.mul(xHat), -1, true))));
  return [gx, unbroadcast(g.mul(xHat), weight), unbroadcast(g, bias)];
});

// ---------------------------------------------------------------- shapes and indexing

/** Reshape; one dim may be -1, symbolic dims are taken from the input at run time. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const out = reshapeShape(`reshape ${x}`, x.shape, shape);
  if (out.every((d, i) => d === x.shape[i]) && out.length === x.rank) return x;
  const target = shape.map((d, i) => (d === -1 && typeof out[i] !== 'number' ? -1 : out[i]));
  return node('Reshape', [x, reshapeTarget(x.shape, out, () => shapeTensor(target, x))], x.dtype, out);
}
vjps.set('Reshape', (g, y) => [reshapeLike(g, x0(y)), undefined]);

export function transpose(x: Tensor, perm: number[]): Tensor {
  const p = perm.map((a) => normAxis('transpose', a, x.rank));
  if (p.length !== x.rank || new Set(p).size !== p.length) {
    throw new ShapeError(`transpose: ${JSON.stringify(perm)} is not a permutation of ${x.rank} axes`);
  }
  return node(
    'Transpose',
    [x],
    x.dtype,
    p.map((a) => x.shape[a]),
    { perm: p },
  );
}
vjps.set('Transpose', (g, y) => {
  const perm = y.attrs.perm as number[],
    inverse = perm.map((_, i) => perm.indexOf(i));
  return [transpose(g, inverse)];
});

/** Broadcasts x to a shape (numpy rules). */
export function expand(x: Tensor, shape: Shape): Tensor {
  const out = broadcastShapes('expand', x.shape, shape);
  return node('Expand', [x, expandTarget(x.shape, shape, () => shapeTensor(shape, x))], x.dtype, out);
}
vjps.set('Expand', (g, y) => [unbroadcast(g, x0(y)), undefined]);

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('unsqueeze', axis, x.rank + 1);
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

export function concat(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new ShapeError('concat: no inputs');
  sameDtype('concat', xs);
  const a = normAxis('concat', axis, xs[0].rank);
  for (const x of xs) {
    if (x.rank !== xs[0].rank || x.shape.some((d, i) => i !== a && d !== xs[0].shape[i])) {
      throw new ShapeError(`concat: shapes ${xs.map((t) => formatShape(t.shape)).join(', ')} differ off axis ${a}`);
    }
  }
  const sizes = xs.map((x) => x.shape[a]);
  const size = sizes.every((d) => typeof d === 'number')
    ? (sizes as number[]).reduce((p, d) => p + d, 0)
    : sizes.join('+');
  const shape = xs[0].shape.map((d, i) => (i === a ? size : d));
  return node('Concat', xs, xs[0].dtype, shape, { axis: a });
}
vjps.set('Concat', (g, y) => {
  const axis = y.attrs.axis as number;
  let start = 0;
  return y.inputs.map((x) => {
    const size = x.shape[axis];
    if (typeof size !== 'number')
      throw new ShapeError(`concat: gradient through a symbolic axis (${size}) is not supported`);
    const part = slice(g, axis, start, start + size);
    start += size;
    return part;
  });
});

/** x[start:end] along one axis (python-style negative indices; end omitted = to the end). */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const a = normAxis('slice', axis, x.rank);
  const shape = x.shape.map((d, i) => (i === a ? sliceDim(`slice ${x}`, d, start, end) : d));
  const int64 = (v: number) => constant(typedArray('int64', [v]), 'int64');
  const endValue = end ?? Number.MAX_SAFE_INTEGER;
  return node('Slice', [x, int64(start), int64(endValue), int64(a)], x.dtype, shape, {}, { axis: a, start, end });
}
vjps.set('Slice', (g, y) => {
  const x = x0(y),
    { axis, start, end } = y.meta as { axis: number; start: number; end?: number };
  const dim = x.shape[axis];
  // Pad the gradient back with zeros: `before` items in front, `after` behind.
  let before = start >= 0 ? start : undefined;
  let after = end === undefined ? 0 : end < 0 ? -end : undefined;
  if (typeof dim === 'number') {
    // Clamp start and end as the forward does (python-style), so out-of-range bounds pad correctly.
    const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + dim : i, 0), dim);
    before = clamp(start);
    after = dim - Math.max(clamp(end ?? dim), before);
  }
  if (before === undefined || after === undefined)
    throw new ShapeError(`slice: gradient of [${start}, ${end}) on symbolic dim "${dim}" is not supported`);
  const pads = new Array(2 * x.rank).fill(0);
  pads[axis] = before;
  pads[x.rank + axis] = after;
  return [node('Pad', [g, constant(typedArray('int64', pads), 'int64')], g.dtype, x.shape)];
});

function checkIndices(op: string, indices: Tensor): void {
  if (indices.dtype !== 'int32' && indices.dtype !== 'int64')
    throw new ShapeError(`${op}: indices must be int32 or int64, got ${indices}`);
}

/** Rows of x picked by indices along axis 0 (an embedding lookup): out = x[indices]. */
export function gather(x: Tensor, indices: Tensor): Tensor {
  checkIndices('gather', indices);
  return node('Gather', [x, indices], x.dtype, [...indices.shape, ...x.shape.slice(1)], { axis: 0 });
}
/**
 * The rows of g added into the rows of x they were read from, as a ScatterElements of one row per
 * index. Not ScatterND: onnxruntime's CPU ScatterND adds its updates on several threads without
 * atomics, so updates of a repeated index (a token seen twice) race, and some are lost; its
 * ScatterElements adds them one after another, so the sum is the same on every run.
 */
vjps.set('Gather', (g, y) => {
  const [x, indices] = ab(y);
  const rest = x.shape.slice(1);
  const rows = reshape(g, [-1, ...rest]); // [M, ...rest]
  const at = expandLike(reshape(indices, [-1, ...rest.map(() => 1)]), rows); // each index along its row
  const attrs = { axis: 0, reduction: 'add' };
  return [node('ScatterElements', [zerosLike(x), at, rows], x.dtype, x.shape, attrs, { intoZeros: true }), undefined];
});

/** out[i][j] = x[i][indices[i][j]] along axis (torch.gather). */
export function gatherElements(x: Tensor, indices: Tensor, axis: number): Tensor {
  checkIndices('gatherElements', indices);
  const a = normAxis('gatherElements', axis, x.rank);
  if (indices.rank !== x.rank) throw new ShapeError(`gatherElements: indices ${indices} must have the rank of ${x}`);
  return node('GatherElements', [x, indices], x.dtype, indices.shape, { axis: a });
}
vjps.set('GatherElements', (g, y) => {
  const [x, indices] = ab(y);
  const axis = y.attrs.axis as number;
  return [
    node(
      'ScatterElements',
      [zerosLike(x), indices, g],
      x.dtype,
      x.shape,
      { axis, reduction: 'add' },
      { intoZeros: true },
    ),
    undefined,
  ];
});

/**
 * The sum of two gradients of one tensor. A scatter-add into zeros (the VJP of Gather and
 * GatherElements) adds its updates into the other gradient instead: no dense zeros, no extra pass.
 */
export function addGradients(a: Tensor, b: Tensor): Tensor {
  const intoZeros = (t: Tensor) => t.meta.intoZeros === true;
  if (intoZeros(a) && !intoZeros(b)) [a, b] = [b, a];
  if (!intoZeros(b) || a.dtype !== b.dtype || a.rank !== b.rank || a.shape.some((d, i) => d !== b.shape[i]))
    return a.add(b);
  return node(b.op, [a, b.inputs[1], b.inputs[2]], b.dtype, b.shape, b.attrs);
}

// ---------------------------------------------------------------- sampling (no gradient)

/** Running sums along one axis (no gradient). */
export function cumsum(x: Tensor, axis: number): Tensor {
  const a = normAxis('cumsum', axis, x.rank);
  return node('CumSum', [x, scalar(a, 'int64')], x.dtype, x.shape);
}

/**
 * The k largest values along the last axis, largest first (no gradient); `k` is an int64 [1] tensor,
 * so one graph serves every k. The indices output is left off.
 */
export function topkValues(x: Tensor, k: Tensor): Tensor {
  if (k.dtype !== 'int64') throw new ShapeError(`topkValues: k must be int64, got ${k}`);
  const shape = [...x.shape.slice(0, -1), 'K'];
  return node('TopK', [x, k], x.dtype, shape, { axis: -1, largest: 1, sorted: 1 }, { unusedOutputs: 1 });
}

export const ONNX_DTYPE: Record<DType, number> = { float32: 1, int32: 6, int64: 7, bool: 9, float64: 11 };

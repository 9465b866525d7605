/** Shapes: reshape, transpose, expand, concat, each beside its VJP, and the run-time shapes VJPs need. */
import { node, sameDtype, vjps, x0 } from './ops-core';
import { less, mul, where } from './ops-elementwise';
import { sum } from './ops-reduce';
import { slice } from './ops-index';
import { broadcastShapes, normAxis, reshapeShape } from './shape';
import { Attrs, Shape, ShapeError, Tensor, constant, formatShape, scalar, typedArray } from './tensor';

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
export function symbolSize(sym: string, x: Tensor): Tensor {
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

/**
 * x, computed only once every tensor in `deps` is, whatever their shapes: Where(e < e, x, x) with e
 * an element of each dep (their first, summed by dtype), which is x (e < e is false, NaN included)
 * and which no runtime folds away. Orders work that its inputs do not already order, on every
 * provider (a view of x with a run-time shape would need int64 arithmetic WebGPU cannot run). No
 * gradient flows to `deps`.
 */
export function afterAll(x: Tensor, deps: Tensor[]): Tensor {
  const byDtype = new Map<string, Tensor>();
  for (const d of deps) {
    const e = slice(reshape(d, [-1]), 0, 0, 1);
    const sum = byDtype.get(d.dtype);
    byDtype.set(d.dtype, sum ? sum.add(e) : e);
  }
  return [...byDtype.values()].reduce((y, e) => where(less(e, e), y, y), x);
}

export function zerosLike(x: Tensor): Tensor {
  return expandLike(scalar(0, x.dtype), x);
}

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

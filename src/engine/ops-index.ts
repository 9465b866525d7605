/** Indexing (slice, gather) beside its VJPs, which scatter into zeros, and the sampling ops (no gradient). */
import { ab, node, vjps, x0 } from './ops-core';
import { expandLike, reshape, zerosLike } from './ops-shape';
import { normAxis, sliceDim } from './shape';
import { ShapeError, Tensor, constant, scalar, typedArray } from './tensor';

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
  const added: RowsAdded = { indices: reshape(indices, [-1]), rows };
  return [
    node('ScatterElements', [zerosLike(x), at, rows], x.dtype, x.shape, attrs, { intoZeros: true, added }),
    undefined,
  ];
});

/** What a Gather's VJP adds into its gradient: `rows` [M, ...] at the rows `indices` [M]. */
export interface RowsAdded {
  indices: Tensor;
  rows: Tensor;
}

/**
 * A gradient as a dense part and the rows that Gathers' VJPs added into it (innermost first):
 * the gradient is `dense`, then each `rows` added at its `indices` in turn.
 */
export function rowsAddedTo(g: Tensor): { dense: Tensor; added: RowsAdded[] } {
  const added: RowsAdded[] = [];
  while (g.meta.added) {
    added.unshift(g.meta.added as RowsAdded);
    g = g.inputs[0];
  }
  return { dense: g, added };
}

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
  return node(b.op, [a, b.inputs[1], b.inputs[2]], b.dtype, b.shape, b.attrs, { added: b.meta.added });
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

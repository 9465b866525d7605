/** Matrix products, each beside its VJP: MatMul, Gemm, and dense layers over the rows of an input. */
import { ab, node, requireFloat, sameDtype, vjps } from './ops-core';
import { reshape, shapeOf, transpose, unbroadcast } from './ops-shape';
import { slice } from './ops-index';
import { broadcastShapes } from './shape';
import { ShapeError, Tensor, formatShape } from './tensor';

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
 * (x Wᵀ for a [out, in] weight, and every product of the backward pass). With `c`, the product is
 * added to c, which onnxruntime can do in c's own memory (a sum of products held in one buffer).
 */
export function gemm(a: Tensor, b: Tensor, transA = false, transB = false, c?: Tensor): Tensor {
  sameDtype('gemm', c ? [a, b, c] : [a, b]);
  requireFloat('gemm', a);
  if (a.rank !== 2 || b.rank !== 2)
    throw new ShapeError(`gemm: operands need rank 2, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  const [m, k] = transA ? [a.shape[1], a.shape[0]] : a.shape,
    [k2, n] = transB ? [b.shape[1], b.shape[0]] : b.shape;
  if (k !== k2 && typeof k === 'number' && typeof k2 === 'number')
    throw new ShapeError(`gemm: inner dims differ in ${formatShape(a.shape)} @ ${formatShape(b.shape)}`);
  if (c && (c.rank !== 2 || c.shape[0] !== m || c.shape[1] !== n))
    throw new ShapeError(`gemm: the addend ${c} must have the product's shape [${m}, ${n}]`);
  return node('Gemm', c ? [a, b, c] : [a, b], a.dtype, [m, n], { transA: transA ? 1 : 0, transB: transB ? 1 : 0 });
}
vjps.set('Gemm', (g, y) => {
  const [a, b] = ab(y),
    tA = y.attrs.transA === 1,
    tB = y.attrs.transB === 1;
  // Y = op(A) op(B) (+ C): dop(A) = g op(B)ᵀ and dop(B) = op(A)ᵀ g, each laid out as its operand is
  // stored, and dC = g.
  const ga = tA ? gemm(b, g, tB, true) : gemm(g, b, false, !tB);
  const gb = tB ? gemm(g, a, true, tA) : gemm(a, g, !tA, false);
  return y.inputs.length === 3 ? [ga, gb, g] : [ga, gb];
});

/**
 * x [..., K] times a weight stored [K, N] (or [N, K] with `transposed`, torch.nn.Linear's layout),
 * as one Gemm over the rows of x: [..., N]. The weight is read as it is stored, never transposed.
 */
export function dense(x: Tensor, weight: Tensor, transposed = false): Tensor {
  if (weight.rank !== 2) throw new ShapeError(`dense: the weight must be a matrix, got ${weight}`);
  if (x.rank === 2) return gemm(x, weight, false, transposed);
  return unflattenRows(gemm(reshape(x, [-1, x.shape[x.rank - 1]]), weight, false, transposed), x);
}

/**
 * Rows [R, N] of a product back to the leading dims of x [..., K]: [..., N]. When more than one
 * of those dims is symbolic, the run-time shape is that of x sliced to nothing along its last axis,
 * [..., 0], where the 0 keeps N from the rows seen as [R, 1, N]: only Shape, Slice and Reshape,
 * with no int64 arithmetic (which GPU providers do not run), and every Reshape is a view.
 */
function unflattenRows(rows: Tensor, x: Tensor): Tensor {
  const lead = x.shape.slice(0, -1),
    n = rows.shape[1];
  if (lead.filter((d) => typeof d !== 'number').length <= 1) return reshape(rows, [...lead, n]);
  const spaced = reshape(rows, [-1, ...lead.slice(1).map(() => 1), n]);
  return node('Reshape', [spaced, shapeOf(slice(x, -1, 0, 0))], rows.dtype, [...lead, n]);
}

function swapLast(x: Tensor): Tensor {
  const perm = [...x.shape.keys()];
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return transpose(x, perm);
}

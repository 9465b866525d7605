/** Reductions and the ops normalising along an axis (softmax, layer norm), each beside its VJP. */
import { node, requireFloat, sameDtype, vjps, x0 } from './ops-core';
import { cast, equal, reciprocal, sqrt } from './ops-elementwise';
import { expandLike, symbolSize, unbroadcast } from './ops-shape';
import { normAxes, normAxis, productDim } from './shape';
import { Dim, Shape, ShapeError, Tensor, constant, scalar, typedArray } from './tensor';

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

/** Elementwise ops, one input or several broadcast together, each beside its VJP. */
import { ab, lift, node, ONNX_DTYPE, sameDtype, Vjp, vjps, x0 } from './ops-core';
import { unbroadcast } from './ops-shape';
import { broadcastShapes } from './shape';
import { DType, Shape, ShapeError, Tensor, scalar } from './tensor';

// ---------------------------------------------------------------- elementwise, one input

export function unary(op: string, vjp?: Vjp) {
  if (vjp) vjps.set(op, vjp);
  return (x: Tensor): Tensor => node(op, [x], x.dtype, x.shape);
}
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

/**
 * What every primitive op is made of: the graph node, the operand checks, and the registry of
 * vector-Jacobian products (given the gradient `g` of the loss with respect to an op's output `y`,
 * the gradients with respect to `y.inputs`), with gradients written out for composites (withVjp).
 */
import { Attrs, DType, Shape, ShapeError, Tensor, scalar } from './tensor';

export type Vjp = (g: Tensor, y: Tensor) => (Tensor | undefined)[];
export const vjps = new Map<string, Vjp>();

/** The VJP rule of an op type, or undefined for ops that carry no gradient. */
export function vjpOf(op: string): Vjp | undefined {
  return vjps.get(op);
}

export function node(op: string, inputs: Tensor[], dtype: DType, shape: Shape, attrs: Attrs = {}, meta = {}): Tensor {
  return new Tensor(op, inputs, dtype, shape, attrs, meta);
}

export function requireFloat(op: string, ...xs: Tensor[]): void {
  for (const x of xs) if (!x.isFloat) throw new ShapeError(`${op}: needs a float tensor, got ${x}`);
}

export function sameDtype(op: string, xs: Tensor[]): void {
  const bad = xs.find((x) => x.dtype !== xs[0].dtype);
  if (bad) throw new ShapeError(`${op}: dtypes differ (${xs.map((x) => x.dtype).join(', ')})`);
}

/** Turns a number operand into a scalar constant of its partner's dtype. */
export function lift(a: Tensor | number, like: Tensor | number): Tensor {
  if (a instanceof Tensor) return a;
  return scalar(a, like instanceof Tensor ? like.dtype : 'float32');
}

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

/** The first input of y, and its first two (the operands of a binary op). */
export const x0 = (y: Tensor): Tensor => y.inputs[0];
export const ab = (y: Tensor): Tensor[] => [y.inputs[0], y.inputs[1]];

export const ONNX_DTYPE: Record<DType, number> = { float32: 1, int32: 6, int64: 7, bool: 9, float64: 11 };

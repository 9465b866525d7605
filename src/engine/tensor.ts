/**
 * The graph IR. A Tensor is a symbolic value: the output of one op applied to other tensors.
 * Building tensors records a computation; nothing runs until the graph is emitted as ONNX
 * (./onnx.ts) and executed (./runtime.ts). Shapes and dtypes are checked as the graph is built,
 * so mistakes surface at the line of model code that made them, with the op and shapes named.
 */
import * as ops from './ops';

export type DType = 'float32' | 'float64' | 'int32' | 'int64' | 'bool';
/** A dimension is a number, or a name for a size known only at run time (batch, sequence). */
export type Dim = number | string;
export type Shape = readonly Dim[];

/** ONNX attribute values carried to the emitted node. */
export type AttrValue = number | string | number[];
export type Attrs = Record<string, AttrValue>;

/** Host data for constants. */
export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export class ShapeError extends Error {}

let nextId = 0;

/** The id the next tensor made will have: tensors made later have ids at least this. */
export const nextTensorId = (): number => nextId;

export class Tensor {
  readonly id = nextId++;

  constructor(
    /** ONNX op type, or 'Input' / 'Constant' for the leaves. */
    readonly op: string,
    readonly inputs: readonly Tensor[],
    readonly dtype: DType,
    readonly shape: Shape,
    /** ONNX attributes of the emitted node. */
    readonly attrs: Attrs = {},
    /** Build-time facts the op's shape rule or VJP needs (axes, permutation...); not emitted. */
    readonly meta: Record<string, unknown> = {},
    /** Graph input name, for op 'Input'. */
    readonly name?: string,
    /** Value, for op 'Constant'. */
    readonly data?: TensorData,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  get isFloat(): boolean {
    return this.dtype === 'float32' || this.dtype === 'float64';
  }

  toString(): string {
    return `${this.op}#${this.id}<${this.dtype}>${formatShape(this.shape)}`;
  }

  // Fluent forms of the common ops, so model code reads like the math.
  add(b: Tensor | number): Tensor {
    return ops.add(this, b);
  }
  sub(b: Tensor | number): Tensor {
    return ops.sub(this, b);
  }
  mul(b: Tensor | number): Tensor {
    return ops.mul(this, b);
  }
  div(b: Tensor | number): Tensor {
    return ops.div(this, b);
  }
  pow(b: Tensor | number): Tensor {
    return ops.pow(this, b);
  }
  neg(): Tensor {
    return ops.neg(this);
  }
  exp(): Tensor {
    return ops.exp(this);
  }
  log(): Tensor {
    return ops.log(this);
  }
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  tanh(): Tensor {
    return ops.tanh(this);
  }
  matmul(b: Tensor): Tensor {
    return ops.matmul(this, b);
  }
  sum(axes?: number | number[], keepdims = false): Tensor {
    return ops.sum(this, axes, keepdims);
  }
  mean(axes?: number | number[], keepdims = false): Tensor {
    return ops.mean(this, axes, keepdims);
  }
  max(axes?: number | number[], keepdims = false): Tensor {
    return ops.max(this, axes, keepdims);
  }
  reshape(shape: Shape): Tensor {
    return ops.reshape(this, shape);
  }
  transpose(perm: number[]): Tensor {
    return ops.transpose(this, perm);
  }
  cast(dtype: DType): Tensor {
    return ops.cast(this, dtype);
  }
  detach(): Tensor {
    return ops.detach(this);
  }
}

/** A graph input: data fed at run time (tokens, masks, learning rate, parameters...). */
export function input(name: string, dtype: DType, shape: Shape): Tensor {
  shape.forEach((d) => checkDim(d, `input "${name}"`));
  return new Tensor('Input', [], dtype, shape, {}, {}, name);
}

/** A constant baked into the graph. Keep these small: weights are inputs, never constants. */
export function constant(data: TensorData, dtype: DType, shape: number[] = [data.length]): Tensor {
  if (numel(shape) !== data.length) {
    throw new ShapeError(`constant: ${data.length} values do not fill shape ${formatShape(shape)}`);
  }
  return new Tensor('Constant', [], dtype, shape, {}, {}, undefined, data);
}

/** A scalar constant (shape []) of the given dtype. */
export function scalar(value: number, dtype: DType = 'float32'): Tensor {
  return constant(typedArray(dtype, [value]), dtype, []);
}

export function typedArray(dtype: DType, values: number[]): TensorData {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int32':
      return Int32Array.from(values);
    case 'int64':
      return BigInt64Array.from(values.map((v) => BigInt(v)));
    case 'bool':
      return Uint8Array.from(values.map((v) => (v ? 1 : 0)));
  }
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkDim(d: Dim, where: string): void {
  const ok = typeof d === 'string' ? d.length > 0 : Number.isInteger(d) && d >= 0;
  if (!ok) throw new ShapeError(`${where}: invalid dimension ${JSON.stringify(d)}`);
}

/** Every tensor the outputs depend on, each after its inputs (iterative: graphs can be deep). */
export function topoSort(outputs: Tensor[]): Tensor[] {
  const order: Tensor[] = [];
  const done = new Set<number>();
  const stack: [Tensor, number][] = outputs.map((t) => [t, 0]);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, next] = top;
    if (done.has(t.id)) {
      stack.pop();
      continue;
    }
    if (next < t.inputs.length) {
      top[1]++;
      const child = t.inputs[next];
      if (!done.has(child.id)) stack.push([child, 0]);
      continue;
    }
    stack.pop();
    done.add(t.id);
    order.push(t);
  }
  return order;
}

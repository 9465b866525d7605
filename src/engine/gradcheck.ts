/**
 * Finite-difference gradient check: compares the autodiff gradients of a float64 graph with
 * central differences (f(x+h) - f(x-h)) / 2h, element by element.
 */
import { grad } from './autodiff';
import { toOnnx } from './onnx';
import { Runtime, hostTensor } from './runtime';
import { DType, Tensor, constant, input } from './tensor';
import { Rng } from '../util/rng';

export interface CheckInput {
  name: string;
  shape: number[];
  data: Float64Array | Int32Array | BigInt64Array | Uint8Array;
  /** Inputs that are not float64 (indices, masks) are fed as they are and not differentiated. */
  dtype?: DType;
  /** A float64 input held fixed: fed, not differentiated. */
  fixed?: boolean;
}

export interface GradCheckResult {
  maxRelError: number;
  worst: { input: string; index: number; analytic: number; numeric: number };
}

/**
 * Checks d(sum(f(inputs) * R))/d(inputs) for a fixed random R (so every output element's
 * Jacobian row is exercised). Relative error is |a - n| / max(|a|, |n|, 1e-3).
 */
export async function gradCheck(
  f: (...xs: Tensor[]) => Tensor,
  inputs: CheckInput[],
  h = 1e-6,
): Promise<GradCheckResult> {
  const xs = inputs.map((i) => input(i.name, i.dtype ?? 'float64', i.shape));
  const y = f(...xs);
  const shape = y.shape.map((d) => {
    if (typeof d !== 'number') throw new Error('gradCheck: outputs need fixed shapes');
    return d;
  });
  const rng = new Rng(1234);
  const r = Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
  const loss = y
    .cast('float64')
    .mul(constant(r, 'float64', shape))
    .sum();
  const wrt = xs.filter((x, i) => x.dtype === 'float64' && !inputs[i].fixed);
  const grads = grad(loss, wrt);

  const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });
  const withGrads = await runtime.load(
    toOnnx({ loss, ...Object.fromEntries(grads.map((g, i) => [`grad:${wrt[i].name}`, g])) }),
  );
  const lossOnly = await runtime.load(toOnnx({ loss }));
  const feeds = Object.fromEntries(inputs.map((i) => [i.name, hostTensor(i.dtype ?? 'float64', i.data, i.shape)]));
  const evalLoss = async () => ((await lossOnly.run(feeds)).loss.data as Float64Array)[0];
  const analytic = await withGrads.run(feeds);

  const result: GradCheckResult = { maxRelError: 0, worst: { input: '', index: -1, analytic: 0, numeric: 0 } };
  for (const x of wrt) {
    const data = feeds[x.name!].data as Float64Array;
    const a = analytic[`grad:${x.name}`].data as Float64Array;
    for (let k = 0; k < data.length; k++) {
      const saved = data[k];
      data[k] = saved + h;
      const up = await evalLoss();
      data[k] = saved - h;
      const down = await evalLoss();
      data[k] = saved;
      const numeric = (up - down) / (2 * h);
      const rel = Math.abs(a[k] - numeric) / Math.max(Math.abs(a[k]), Math.abs(numeric), 1e-3);
      if (!(rel <= result.maxRelError)) {
        result.maxRelError = rel;
        result.worst = { input: x.name!, index: k, analytic: a[k], numeric };
      }
    }
  }
  await withGrads.release();
  await lossOnly.release();
  return result;
}

/**
 * Optimizers as graph code: the update is part of the step's ONNX graph, and the learning rate and
 * step count are scalar inputs, so the host runs any schedule without rebuilding graphs.
 */
import { div, equal, exp, less, log, minimum, neg, sqrt, sub, sumSquares, where } from './ops';
import { Tensor } from './tensor';

export interface Optimizer {
  /** Names of the per-parameter state tensors (each shaped like its parameter, zero at start). */
  slots: string[];
  /** One update: the new parameter and new slot values, given the (clipped) gradient. */
  update(param: Tensor, grad: Tensor, slots: Tensor[], lr: Tensor, step: Tensor): { param: Tensor; slots: Tensor[] };
}

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Which parameters decay; by default matrices and embeddings (rank ≥ 2), not biases or norms. */
  decays?: (param: Tensor) => boolean;
}

/**
 * AdamW (Loshchilov & Hutter) as PyTorch computes it: decoupled weight decay, bias correction with
 * the step count t (1 on the first step).
 *   m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²
 *   p = p (1 - lr λ) - lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + ε)
 */
export function adamw(options: AdamWOptions = {}): Optimizer {
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = options;
  const decays = options.decays ?? ((p: Tensor) => p.rank >= 2);
  // Each pass over the parameters counts (the embedding alone has V·D of them), so the update is
  // rearranged to make fewer: the bias corrections move onto scalars,
  //   lr · (m / c1) / (sqrt(v / c2) + ε) = (lr · sqrt(c2) / c1) · m / (sqrt(v) + ε · sqrt(c2)),
  // and a clipped gradient g·s (one scalar s for all) is not scaled: s joins the coefficients. The
  // scalars depend only on (lr, t, s), the same for every parameter, so they are built once per graph.
  let scalars:
    | {
        lr: Tensor;
        t: Tensor;
        s?: Tensor;
        m: Tensor | number;
        v: Tensor | number;
        eps: Tensor;
        stepSize: Tensor;
        decay: Tensor;
      }
    | undefined;
  const coefficients = (lr: Tensor, t: Tensor, s?: Tensor) => {
    if (scalars && scalars.lr === lr && scalars.t === t && scalars.s === s) return scalars;
    const rootC2 = sqrt(biasCorrection(beta2, t));
    return (scalars = {
      lr,
      t,
      s,
      m: s ? s.mul(1 - beta1) : 1 - beta1,
      v: s ? s.mul(s).mul(1 - beta2) : 1 - beta2,
      eps: rootC2.mul(eps),
      stepSize: lr.mul(rootC2).div(biasCorrection(beta1, t)),
      decay: lr.mul(-weightDecay).add(1),
    });
  };
  return {
    slots: ['exp_avg', 'exp_avg_sq'],
    update(p, grad, [m, v], lr, t) {
      const [g, s] = scalarFactor(grad);
      const k = coefficients(lr, t, s);
      // One pass over the parameter's elements per op: 3 for m, 4 for v, 6 for p (13 in all, and
      // ReduceSumSquare's one for the norm). Every op combines two tensors or scales one, and each
      // of the seven scalars (β1, k.m, β2, k.v, ε, step size, decay) lands on a different tensor,
      // so with elementwise ONNX ops and PyTorch's exp_avg/exp_avg_sq kept as they are, no fewer
      // passes compute it.
      const m1 = m.mul(beta1).add(g.mul(k.m));
      const v1 = v.mul(beta2).add(g.mul(k.v).mul(g));
      const decayed = decays(p) && weightDecay ? p.mul(k.decay) : p;
      return { param: decayed.sub(m1.div(sqrt(v1).add(k.eps)).mul(k.stepSize)), slots: [m1, v1] };
    },
  };
}

/** A gradient as (g, s) when it is g times a scalar s (as clipping makes it), else (gradient, none). */
function scalarFactor(grad: Tensor): [Tensor, Tensor | undefined] {
  const [g, s] = grad.inputs;
  return grad.op === 'Mul' && s.rank === 0 && g.rank > 0 ? [g, s] : [grad, undefined];
}

/**
 * 1 - β^t. Computed as written in float32 it loses digits to cancellation for β near 1 (1e-5 off
 * for β = 0.999 over the first thousands of steps), so near 1 it uses -(u - 1)·z / log(u) with
 * z = t·log β, u = exp(z), which cancels the rounding error of u (Kahan's expm1).
 */
function biasCorrection(beta: number, t: Tensor): Tensor {
  const z = t.mul(Math.log(beta)),
    u = exp(z);
  const nearOne = neg(u.sub(1).mul(z).div(log(u)));
  return where(less(u, 0.5), sub(1, u), where(equal(u, 1), neg(z), nearOne));
}

/** The global L2 norm of all gradients together, one read of each (no g² is written). */
export function globalNorm(grads: Tensor[]): Tensor {
  return sqrt(grads.map((g) => sumSquares(g)).reduce((a, b) => a.add(b)));
}

/**
 * The factor that brings gradients of global norm `norm` down to at most maxNorm, as
 * torch.nn.utils.clip_grad_norm_ scales them: min(maxNorm / (norm + 1e-6), 1).
 */
export function clipScale(norm: Tensor, maxNorm: number): Tensor {
  return minimum(div(maxNorm, norm.add(1e-6)), 1);
}

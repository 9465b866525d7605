/**
 * Functions composed from the primitive ops: their gradients follow from the primitives' VJPs,
 * or are written out (ops.withVjp) where that is much cheaper. Everything here uses only portable
 * ONNX ops, so every execution provider runs it (e.g. log-softmax is built from Softmax, ReduceMax
 * and Log rather than the LogSoftmax op).
 */
import {
  abs,
  after,
  cast,
  dense,
  exp,
  gatherElements,
  layerNormalization,
  log,
  max,
  maximum,
  mean,
  neg,
  reciprocal,
  reshape,
  sigmoid,
  softmax,
  sqrt,
  sub,
  sum,
  unbroadcast,
  unsqueeze,
  withVjp,
} from './ops';
import { Tensor, ShapeError } from './tensor';

/**
 * log(sum(exp(x))) along an axis, stable for large x, as max(x) - log(max(softmax(x))): the largest
 * probability is 1 / sum(exp(x - max(x))) ≥ 1/n, so its log never underflows. Its gradient is
 * softmax(x), which the forward already has: one pass over x for the backward.
 */
export function logsumexp(x: Tensor, axis = -1, keepdims = false): Tensor {
  const p = softmax(x, axis);
  const lse = max(x, axis, true).sub(log(max(p, axis, true)));
  const y = keepdims
    ? lse
    : reshape(
        lse,
        x.shape.filter((_, i) => i !== (axis < 0 ? axis + x.rank : axis)),
      );
  return withVjp(y, [x], (g) => [g.reshape(lse.shape).mul(p)]);
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return x.sub(logsumexp(x, axis, true));
}

/** log(1 + exp(x)), stable for large |x|. */
export function softplus(x: Tensor): Tensor {
  return maximum(x, 0).add(log(exp(neg(abs(x))).add(1)));
}

/** log σ(x) = -softplus(-x). */
export function logSigmoid(x: Tensor): Tensor {
  return neg(softplus(neg(x)));
}

/** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias. */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  return layerNormalization(x, weight, bias, eps);
}

/**
 * RMSNorm over the last axis (HF's LlamaRMSNorm): n = x r with r = 1/sqrt(mean(x²) + eps), times
 * weight. Its gradient is written out, from what the forward has: dx = r (gw - n mean(gw n)) with
 * gw = g weight, and dweight = g n summed over the leading axes.
 */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const r = reciprocal(sqrt(mean(x.mul(x), -1, true).add(eps)));
  const n = x.mul(r);
  return withVjp(n.mul(weight), [x, weight], (g) => {
    const gw = g.mul(weight);
    return [gw.sub(n.mul(mean(gw.mul(n), -1, true))).mul(r), unbroadcast(g.mul(n), weight)];
  });
}

/**
 * x σ(z(x)) with its gradient g σ (1 + x (1 - σ) z'(x)), σ computed again from x in the backward:
 * only x is kept from the forward, as PyTorch keeps it for these activations, not σ and the
 * intermediates of z too (at GPT-2 124M, two [B, T, 3072] tensors a layer). The backward's copy
 * reads x once the gradient arrives (ops.after), so it cannot run early and be kept instead.
 */
function gatedBySigmoid(x: Tensor, z: (x: Tensor) => Tensor, dz?: (x: Tensor) => Tensor): Tensor {
  return withVjp(x.mul(sigmoid(z(x))), [x], (g) => {
    const xb = after(x, g);
    const s = sigmoid(z(xb));
    const slope = xb.mul(sub(1, s));
    return [g.mul(s).mul((dz ? slope.mul(dz(xb)) : slope).add(1))];
  });
}

/** SiLU (swish): x σ(x). */
export function silu(x: Tensor): Tensor {
  return gatedBySigmoid(x, (v) => v);
}

/**
 * GELU, tanh approximation (GPT-2's "gelu_new"): 0.5 x (1 + tanh(u)), u = sqrt(2/π) (x + 0.044715 x³),
 * computed as x σ(2u), which is the same function in fewer ops (and without 1 + tanh(u)
 * cancelling for negative x).
 */
export function gelu(x: Tensor): Tensor {
  const c = 2 * Math.sqrt(2 / Math.PI);
  return gatedBySigmoid(
    x,
    (v) =>
      v
        .mul(v)
        .mul(c * 0.044715)
        .add(c)
        .mul(v),
    (v) =>
      v
        .mul(v)
        .mul(3 * c * 0.044715)
        .add(c),
  );
}

/**
 * x @ weight + bias, with weight stored [in, out] (GPT-2's Conv1D layout), or [out, in] with
 * `transposed` (torch.nn.Linear's): x @ weightᵀ + bias, read in place.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor, transposed = false): Tensor {
  const y = dense(x, weight, transposed);
  return bias ? y.add(bias) : y;
}

/** log p(target) under softmax(logits): logits [..., V], targets [...] (int) → [...]. */
export function tokenLogprobs(logits: Tensor, targets: Tensor): Tensor {
  if (targets.rank !== logits.rank - 1)
    throw new ShapeError(`tokenLogprobs: targets ${targets} must drop the last axis of logits ${logits}`);
  const picked = gatherElements(logits, unsqueeze(targets, -1), -1);
  return reshape(picked, targets.shape).sub(logsumexp(logits, -1));
}

/** Mean negative log-likelihood of targets; with a mask, over the positions where mask is 1. */
export function crossEntropy(logits: Tensor, targets: Tensor, mask?: Tensor): Tensor {
  const nll = neg(tokenLogprobs(logits, targets));
  return mask ? maskedMean(nll, mask) : mean(nll);
}

/** Mean of x over the positions where mask is 1 (0 when the mask is empty). */
export function maskedMean(x: Tensor, mask: Tensor): Tensor {
  const m = cast(mask, x.dtype);
  return sum(x.mul(m)).div(maximum(sum(m), 1));
}

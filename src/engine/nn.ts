/**
 * Functions composed from the primitive ops: their gradients follow from the primitives' VJPs,
 * or are written out (ops.withVjp) where that is much cheaper. Everything here uses only portable
 * ONNX ops, so every execution provider runs it (e.g. log-softmax is built from Softmax, ReduceMax
 * and Log rather than the LogSoftmax op).
 */
import {
  abs,
  cast,
  dense,
  exp,
  gather,
  gatherElements,
  gemm,
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
  const { p, lse } = softmaxAndLogsumexp(x, axis);
  const y = keepdims
    ? lse
    : reshape(
        lse,
        x.shape.filter((_, i) => i !== (axis < 0 ? axis + x.rank : axis)),
      );
  return withVjp(y, [x], (g) => [g.reshape(lse.shape).mul(p)]);
}

/** softmax(x) and log(sum(exp(x))) (its axis kept) along an axis, the second read off the first. */
function softmaxAndLogsumexp(x: Tensor, axis: number): { p: Tensor; lse: Tensor } {
  const p = softmax(x, axis);
  return { p, lse: max(x, axis, true).sub(log(max(p, axis, true))) };
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

/** SiLU (swish): x σ(x). */
export function silu(x: Tensor): Tensor {
  return x.mul(sigmoid(x));
}

/**
 * GELU, tanh approximation (GPT-2's "gelu_new"): 0.5 x (1 + tanh(u)), u = sqrt(2/π) (x + 0.044715 x³),
 * computed as x σ(2u), which is the same function in fewer ops (and without 1 + tanh(u)
 * cancelling for negative x).
 */
export function gelu(x: Tensor): Tensor {
  const c = 2 * Math.sqrt(2 / Math.PI);
  return x.mul(
    sigmoid(
      x
        .mul(x)
        .mul(c * 0.044715)
        .add(c)
        .mul(x),
    ),
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

/**
 * log p(target) under an LM head, softmax(hidden Wᵀ) with its weight W [V, D] read as stored:
 * [...] for hidden [..., D] and targets [...], with the logits [..., V] for metrics. The value of
 * tokenLogprobs(dense(hidden, W, true), targets), but the backward forms no [tokens, V] tensor
 * beyond the softmax p the forward keeps: the target's logit is the dot of its hidden state with
 * its row of W, so its gradient goes into rows of W rather than into the logits, and the
 * log-sum-exp's, g p, reaches hidden and W as g (p W) and pᵀ (g hidden), weighted on the D side.
 */
export function headTokenLogprobs(
  hidden: Tensor,
  weight: Tensor,
  targets: Tensor,
): { logprobs: Tensor; logits: Tensor } {
  if (targets.rank !== hidden.rank - 1)
    throw new ShapeError(`headTokenLogprobs: targets ${targets} must drop the last axis of hidden ${hidden}`);
  const logits = dense(hidden, weight, true);
  const { p, lse } = softmaxAndLogsumexp(logits, -1);
  const rows = (t: Tensor) => reshape(t, [-1, t.shape[t.rank - 1]]);
  const partition = withVjp(reshape(lse, targets.shape), [hidden, weight], (g) => {
    const perRow = unsqueeze(g, -1);
    return [dense(p, weight).mul(perRow), gemm(rows(p), rows(hidden.mul(perRow)), true)];
  });
  const targetLogit = sum(hidden.mul(gather(weight, targets)), -1);
  return { logprobs: targetLogit.sub(partition), logits };
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

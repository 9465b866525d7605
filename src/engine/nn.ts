/**
 * Functions composed from the primitive ops: their gradients follow from the primitives'
 * VJPs. Everything here uses only portable ONNX ops, so every execution provider runs it
 * (e.g. log-softmax is built from ReduceMax/Exp/ReduceSum/Log rather than the LogSoftmax op).
 */
import { abs, cast, exp, gatherElements, log, matmul, max, maximum, mean, neg, reshape, sqrt, sum, tanh, unsqueeze } from './ops';
import { Tensor, ShapeError } from './tensor';

/** log(sum(exp(x))) along an axis, stable for large x. */
export function logsumexp(x: Tensor, axis = -1, keepdims = false): Tensor {
  const m = max(x, axis, true).detach(); // the result does not depend on m, so no gradient through it
  const lse = log(sum(exp(x.sub(m)), axis, true)).add(m);
  return keepdims ? lse : reshape(lse, x.shape.filter((_, i) => i !== (axis < 0 ? axis + x.rank : axis)));
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
  const xc = x.sub(mean(x, -1, true));
  const variance = mean(xc.mul(xc), -1, true);
  return xc.div(sqrt(variance.add(eps))).mul(weight).add(bias);
}

/** GELU, tanh approximation (GPT-2's "gelu_new"). */
export function gelu(x: Tensor): Tensor {
  const inner = x.add(x.mul(x).mul(x).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
  return x.mul(0.5).mul(tanh(inner).add(1));
}

/** x @ weight + bias, with weight stored [in, out] (GPT-2's Conv1D layout). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const y = matmul(x, weight);
  return bias ? y.add(bias) : y;
}

/** log p(target) under softmax(logits): logits [..., V], targets [...] (int) → [...]. */
export function tokenLogprobs(logits: Tensor, targets: Tensor): Tensor {
  if (targets.rank !== logits.rank - 1) throw new ShapeError(`tokenLogprobs: targets ${targets} must drop the last axis of logits ${logits}`);
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

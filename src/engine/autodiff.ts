/**
 * Reverse-mode autodiff over the graph IR: walk the graph from the loss back to the inputs,
 * applying each op's VJP and summing the gradients of tensors used more than once.
 */
import { CustomVjp, Vjp, addGradients, after, afterAll, vjpOf, withVjp, zerosLike } from './ops';
import { ShapeError, Tensor, nextTensorId, scalar, topoSort } from './tensor';

/**
 * Gradients of a scalar `loss` with respect to each tensor in `wrt` (as new graph tensors).
 * A tensor the loss does not depend on gets zeros. Integer and bool paths carry no gradient.
 * The backward pass starts once the loss and every scalar in `after` (the step's metrics) are
 * computed (its seed is ops.afterAll of them): whatever order a runtime picks for the nodes,
 * the forward's last readers (an accuracy over the logits, the log-sum-exp's max over the softmax)
 * then run before the backward, not at the end of it with the logits kept alive.
 */
export function grad(loss: Tensor, wrt: Tensor[], after: Tensor[] = []): Tensor[] {
  if (loss.rank !== 0) throw new ShapeError(`grad: the loss must be a scalar, got ${loss}`);
  if (!loss.isFloat) throw new ShapeError(`grad: the loss must be float, got ${loss}`);
  const scalars = [loss, ...after].filter((t) => t.rank === 0);
  return backward(loss, afterAll(scalar(1, loss.dtype), scalars), wrt);
}

/**
 * The vector-Jacobian products gᵀ ∂y/∂w of `y` for each w in `wrt`, given g, the gradient of y.
 * Only tensors made from `since` on (and `wrt`) carry gradients: the rest of the graph is left alone.
 */
function backward(y: Tensor, g: Tensor, wrt: Tensor[], since = 0): Tensor[] {
  const loss = y;
  for (const w of wrt) if (!w.isFloat) throw new ShapeError(`grad: cannot differentiate with respect to ${w}`);

  const order = topoSort([loss]);
  const targets = new Set(wrt.map((w) => w.id));
  // A tensor with its own VJP (ops.withVjp) sends gradients to its `xs`; any other to its inputs.
  const ruleOf = (t: Tensor): [Vjp | undefined, readonly Tensor[]] => {
    const custom = t.meta.custom as CustomVjp | undefined;
    return custom ? [custom.vjp, custom.xs] : [vjpOf(t.op), t.inputs];
  };
  // Only tensors between some `wrt` and the loss need gradients.
  const needed = new Set<number>();
  for (const t of order) {
    const [rule, xs] = ruleOf(t);
    if (targets.has(t.id) || (t.id >= since && t.isFloat && rule && xs.some((i) => needed.has(i.id)))) needed.add(t.id);
  }

  const grads = new Map<number, Tensor>([[loss.id, g]]);
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k];
    const gt = grads.get(t.id);
    const [rule, xs] = ruleOf(t);
    if (!gt || !rule || !needed.has(t.id)) continue;
    made(rule(gt, t), xs, targets).forEach((gx, i) => {
      const x = xs[i];
      if (!gx || !needed.has(x.id)) return;
      const prev = grads.get(x.id);
      grads.set(x.id, prev ? addGradients(prev, gx) : gx);
    });
  }
  return wrt.map((w) => grads.get(w.id) ?? zerosLike(w));
}

/**
 * One op's gradients, those of the `targets` (parameters) made before the others flow on, as
 * PyTorch's autograd makes them: a layer's input and the gradient reaching its output can then go
 * once its weight's gradient is made, whatever order the runtime picks for the nodes (left free,
 * onnxruntime may hold them all until the end of the backward, or hold a tied LM head's [V, D]
 * gradient through it).
 */
function made(gxs: (Tensor | undefined)[], xs: readonly Tensor[], targets: Set<number>): (Tensor | undefined)[] {
  const own = gxs.filter((gx, i): gx is Tensor => gx !== undefined && targets.has(xs[i].id));
  if (!own.length || own.length === gxs.filter((gx) => gx).length) return gxs;
  return gxs.map((gx, i) => (gx && !targets.has(xs[i].id) ? afterAll(gx, own) : gx));
}

/**
 * f(x) with its activations recomputed in the backward pass instead of kept from the forward
 * (gradient checkpointing, Chen et al. 2016): only x is held, and the backward runs f again from
 * x and differentiates that copy. The copy reads x through a Reshape to the run-time shape of the
 * gradient arriving at f(x), so it cannot run before the backward reaches it. f's other inputs
 * (parameters, masks) get their gradients through the copy as through f.
 */
export function recomputed(f: (x: Tensor) => Tensor, x: Tensor): Tensor {
  const first = nextTensorId();
  const y = f(x);
  // The tensors f reads from outside itself: made before it ran, read by a tensor it made.
  const free = new Map<number, Tensor>();
  for (const t of topoSort([y]))
    if (t.id >= first) for (const i of t.inputs) if (i.id < first && i !== x && i.isFloat) free.set(i.id, i);
  const outside = [...free.values()];
  if (y.shape.join() !== x.shape.join())
    throw new ShapeError(`recomputed: f must keep the shape of its input ${x}, got ${y}`);
  return withVjp(y, [x, ...outside], (g) => {
    // The copy's own tensors only: its gradients stop at its input and at what f reads from outside.
    const since = nextTensorId();
    const again = after(x, g);
    return backward(f(again), g, [again, ...outside], since);
  });
}

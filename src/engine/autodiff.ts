/**
 * Reverse-mode autodiff over the graph IR: walk the graph from the loss back to the inputs,
 * applying each op's VJP and summing the gradients of tensors used more than once.
 */
import { CustomVjp, Vjp, addGradients, vjpOf, zerosLike } from './ops';
import { ShapeError, Tensor, scalar, topoSort } from './tensor';

/**
 * Gradients of a scalar `loss` with respect to each tensor in `wrt` (as new graph tensors).
 * A tensor the loss does not depend on gets zeros. Integer and bool paths carry no gradient.
 */
export function grad(loss: Tensor, wrt: Tensor[]): Tensor[] {
  if (loss.rank !== 0) throw new ShapeError(`grad: the loss must be a scalar, got ${loss}`);
  if (!loss.isFloat) throw new ShapeError(`grad: the loss must be float, got ${loss}`);
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
    if (targets.has(t.id) || (t.isFloat && rule && xs.some((i) => needed.has(i.id)))) needed.add(t.id);
  }

  const grads = new Map<number, Tensor>([[loss.id, scalar(1, loss.dtype)]]);
  for (let k = order.length - 1; k >= 0; k--) {
    const y = order[k];
    const g = grads.get(y.id);
    const [rule, xs] = ruleOf(y);
    if (!g || !rule || !needed.has(y.id)) continue;
    rule(g, y).forEach((gx, i) => {
      const x = xs[i];
      if (!gx || !needed.has(x.id)) return;
      const prev = grads.get(x.id);
      grads.set(x.id, prev ? addGradients(prev, gx) : gx);
    });
  }
  return wrt.map((w) => grads.get(w.id) ?? zerosLike(w));
}

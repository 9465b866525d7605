/**
 * Cross-entropy of a linear head over a large vocabulary without a [tokens, vocab] tensor: the
 * fused linear cross-entropy of Liger-Kernel (Hsu et al. 2024), in portable ONNX ops. The tokens
 * are split into chunks; each chunk's logits h Wᵀ give its loss and accuracy and, since the loss
 * is a masked mean, its share of the gradient too, in the forward, so only one chunk's logits are
 * ever held. The head's matrix products are those of the plain loss: one for the logits, one for
 * the hidden states' gradient and, when the weight trains, one for the weight's.
 */
import {
  after,
  afterAll,
  cast,
  concat,
  gatherElements,
  gemm,
  greaterOrEqual,
  log,
  max,
  maximum,
  reshape,
  reshapeLike,
  slice,
  softmax,
  sum,
  withVjp,
} from './ops';
import { ShapeError, Tensor } from './tensor';
import { ChunkGradients, everyNth, padRows, softmaxGradient, unchunk } from './token-chunks';

/** The masked mean negative log-likelihood of the targets, and how often the target has the largest logit. */
export interface LinearCrossEntropy {
  loss: Tensor;
  accuracy: Tensor;
}

/**
 * Cross-entropy of softmax(hidden Wᵀ) against `targets` where `mask` is 1 (the mean over those
 * positions, 0 when there are none), with hidden [..., D], the weight W [V, D] read as it is stored,
 * targets (int) and mask [...], in `chunks` chunks of tokens. The accuracy counts a position right
 * when its target's logit is the largest. A chunk starts once the one before has made its
 * gradients, so whatever order a runtime picks, one chunk's logits are held at a time.
 */
export function fusedLinearCrossEntropy(
  hidden: Tensor,
  weight: Tensor,
  targets: Tensor,
  mask: Tensor,
  chunks = 1,
  gradients: ChunkGradients = 'hidden and weight',
): LinearCrossEntropy {
  checkOperands(hidden, weight, targets, mask, chunks);
  const m = reshape(cast(mask, hidden.dtype), [-1, 1]);
  // Each position's share of the mean: the gradient reaching its loss, known before any logit.
  const share = m.div(maximum(sum(m), 1));
  // The targets ride along as floats (exact below 2^24), which every provider slices; WebGPU slices no ints.
  const columns = [reshape(hidden, [-1, weight.shape[1]]), reshape(cast(targets, hidden.dtype), [-1, 1]), share];
  const padded = chunks === 1 ? columns : padRows(columns, chunks - 1);
  const parts: Chunk[] = [];
  let sums: Tensor | undefined, dWeight: Tensor | undefined;
  for (let k = 0; k < chunks; k++) {
    // Chunk k reads its rows once chunk k - 1 has made its gradients (their first elements, to be exact).
    const [h, t, w] = chunks === 1 ? padded : padded.map((x) => everyNth(x, k, chunks));
    const made = [parts[k - 1]?.dHidden, dWeight].filter((x): x is Tensor => x !== undefined);
    const c = chunkOf(afterAll(h, made), weight, cast(t, 'int32'), w, gradients !== 'none');
    sums = sums ? sums.add(c.sums) : c.sums;
    parts.push(c);
    if (gradients === 'hidden and weight' && chunks > 1) dWeight = weightGradient(c, dWeight);
  }
  const loss = reshape(slice(sums!, 0, 0, 1), []);
  const accuracy = reshape(slice(sums!, 0, 1, 2), []);
  if (gradients === 'none') return { loss, accuracy };
  const dRows = parts.map((c) => c.dHidden!);
  const dPadded = chunks === 1 ? dRows[0] : unchunk(dRows, padded[0], chunks);
  // Once the last chunk's W gradient is made too, so that its logits' gradient is not held on.
  const last = dWeight ? [dWeight] : [];
  const dHidden = afterAll(reshapeLike(chunks === 1 ? dPadded : slice(dPadded, 0, 0, 1 - chunks), hidden), last);
  // With one chunk, W's gradient is made in the backward with g folded into the rows: no [V, D] product by g.
  const dWeightTimes = (g: Tensor) => (chunks === 1 ? weightGradient(parts[0], undefined, g) : dWeight!.mul(g));
  const vjp = (g: Tensor) => [dHidden.mul(g), gradients === 'hidden and weight' ? dWeightTimes(g) : undefined];
  return { loss: withVjp(loss, [hidden, weight], vjp), accuracy };
}

function checkOperands(hidden: Tensor, weight: Tensor, targets: Tensor, mask: Tensor, chunks: number): void {
  const d = hidden.shape[hidden.rank - 1];
  if (weight.rank !== 2 || weight.shape[1] !== d)
    throw new ShapeError(`fusedLinearCrossEntropy: the weight ${weight} must be [V, ${d}] for hidden ${hidden}`);
  if (targets.rank !== hidden.rank - 1 || mask.rank !== targets.rank)
    throw new ShapeError(
      `fusedLinearCrossEntropy: targets ${targets} and mask ${mask} must drop the last axis of ${hidden}`,
    );
  if (!Number.isInteger(chunks) || chunks < 1)
    throw new ShapeError(`fusedLinearCrossEntropy: chunks must be a positive integer, got ${chunks}`);
}

/** A chunk's rows, its weighted loss and accuracy sums [2], and its gradients. */
interface Chunk {
  h: Tensor;
  sums: Tensor;
  /** d(loss)/d(its logits), [rows, V]. */
  dz?: Tensor;
  /** d(loss)/d(its hidden rows), [rows, D]. */
  dHidden?: Tensor;
}

/**
 * One chunk: logits z = h Wᵀ, log-sum-exp as max(z) - log(max(softmax(z))) (see nn.logsumexp),
 * and, with `gradients`, the gradient of Σ w · nll with respect to z, w (softmax(z) - onehot(t)),
 * made from the softmax in place of a one-hot (a scatter-add of -w at each target), and h's.
 */
function chunkOf(h: Tensor, weight: Tensor, t: Tensor, w: Tensor, gradients: boolean): Chunk {
  const z = gemm(h, weight, false, true);
  const p = softmax(z, -1);
  const zMax = max(z, -1, true);
  const zTarget = gatherElements(z, t, -1);
  const nll = zMax.sub(log(max(p, -1, true))).sub(zTarget);
  const right = cast(greaterOrEqual(zTarget, zMax), h.dtype);
  const sums = concat([sum(nll.mul(w), [0]), sum(right.mul(w), [0])], 0);
  if (!gradients) return { h, sums };
  // The gradient once the loss and accuracy (the last readers of z and its softmax) are made.
  const wLast = afterAll(w, [sums]);
  const dz = softmaxGradient(p, t, wLast);
  return { h, sums, dz, dHidden: gemm(dz, weight) };
}

/**
 * W's gradient dzᵀ h over a chunk's rows (times `scale`), added to `before`; made once the hidden
 * rows' gradient is, so that nothing of the chunk but its gradients outlives it.
 */
function weightGradient(c: Chunk, before?: Tensor, scale?: Tensor): Tensor {
  const h = after(c.h, c.dHidden!);
  return gemm(c.dz!, scale ? h.mul(scale) : h, true, false, before);
}

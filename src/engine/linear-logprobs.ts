/**
 * Per-token log-probabilities of a linear head over a large vocabulary without a [tokens, vocab]
 * tensor, for the policy and the reference of the RL stages: log softmax(h Wᵀ / τ)[target] over
 * chunks of tokens, as the fused linear cross-entropy (./linear-cross-entropy.ts) works through
 * them. Unlike that loss, the gradient reaching each log-prob is known only in the backward, so
 * the backward computes each chunk's logits again from h and W once it is: forward and backward
 * each hold one chunk's [rows, V] tensors at a time, for one more product with the head per chunk.
 */
import {
  after,
  afterAll,
  cast,
  concat,
  detach,
  gatherElements,
  gemm,
  log,
  max,
  mean,
  reshape,
  reshapeLike,
  slice,
  softmax,
  sum,
  withVjp,
} from './ops';
import { ShapeError, Tensor } from './tensor';
import { ChunkGradients, everyNth, padRows, softmaxGradient, unchunk } from './token-chunks';

/** The per-position results, each shaped as the targets. */
export interface LinearLogprobs {
  /** log π(target) under softmax(h Wᵀ / τ). */
  logprobs: Tensor;
  /** The entropy of softmax(h Wᵀ / τ), when asked for; a statistic without gradient. */
  entropy?: Tensor;
  /** The mean of the logits h Wᵀ / τ over the vocabulary; a statistic without gradient. */
  meanLogit: Tensor;
}

export interface LinearLogprobsOptions {
  /** The sampling temperature τ the logits are divided by; 1 unless given. */
  temperature?: number;
  /** Chunks of tokens; 1 unless given. */
  chunks?: number;
  /** Which gradients the log-probs send back: of the hidden states ('hidden', the default) or none. */
  gradients?: ChunkGradients;
  /** Whether to compute the entropy too (in the same pass over each chunk's logits). */
  entropy?: boolean;
}

/**
 * log softmax(hidden Wᵀ / τ) at `targets`, with hidden [..., D], the weight W [V, D] read as it is
 * stored and targets [...] (int), in `chunks` chunks of tokens; a chunk starts once the one before
 * is done, in the forward as in the backward, so whatever order a runtime picks, one chunk's
 * logits are held at a time. The backward is g (onehot − softmax(z)) / τ for the logits z, times
 * W for the hidden states and, transposed, times h for W. With one chunk the backward reads the
 * forward's softmax instead of computing it again. The mean logit is h · mean(W) / τ: no logits.
 */
export function fusedLinearLogprobs(
  hidden: Tensor,
  weight: Tensor,
  targets: Tensor,
  options: LinearLogprobsOptions = {},
): LinearLogprobs {
  const { temperature = 1, chunks = 1, gradients = 'hidden', entropy = false } = options;
  checkOperands(hidden, weight, targets, chunks, temperature);
  const rows = reshape(hidden, [-1, weight.shape[1]]);
  // The targets ride along as floats (exact below 2^24), which every provider slices; WebGPU slices no ints.
  const columns = [rows, reshape(cast(targets, hidden.dtype), [-1, 1])];
  const [h, t] = chunks === 1 ? columns : padRows(columns, chunks - 1);
  const take = (x: Tensor, k: number) => (chunks === 1 ? x : everyNth(x, k, chunks));
  const parts: Chunk[] = [];
  for (let k = 0; k < chunks; k++) {
    const before = parts[k - 1] ? [parts[k - 1].stats] : [];
    parts.push(chunkOf(afterAll(take(h, k), before), weight, cast(take(t, k), 'int32'), temperature, entropy));
  }
  const stats = parts.map((c) => c.stats);
  // The log-probs (and the entropies) of every row, in the rows' order, without the padding.
  const all =
    chunks === 1
      ? stats[0]
      : slice(unchunk(stats, slice(h, 1, 0, stats[0].shape[1] as number), chunks), 0, 0, 1 - chunks);
  const column = (i: number) => reshapeLike(slice(all, 1, i, i + 1), targets);
  const meanLogit = detach(reshapeLike(gemm(rows, mean(weight, 0, true), false, true).mul(1 / temperature), targets));
  const statistics = { meanLogit, ...(entropy ? { entropy: detach(column(1)) } : {}) };
  if (gradients === 'none') return { logprobs: detach(column(0)), ...statistics };
  const trainsWeight = gradients === 'hidden and weight';
  const vjp = (g: Tensor) => {
    // The gradient of each row's logits is w (softmax(z) − onehot(t)), w = −g / τ.
    const w = reshape(g, [-1, 1]).mul(-1 / temperature);
    const d =
      chunks === 1
        ? backOf(parts[0], w, weight, trainsWeight)
        : chunkedBackward(h, t, padRows([w], chunks - 1)[0], weight, chunks, temperature, trainsWeight);
    return [reshapeLike(d.dHidden, hidden), d.dWeight];
  };
  return { logprobs: withVjp(column(0), [hidden, weight], vjp), ...statistics };
}

function checkOperands(hidden: Tensor, weight: Tensor, targets: Tensor, chunks: number, temperature: number): void {
  const d = hidden.shape[hidden.rank - 1];
  if (weight.rank !== 2 || weight.shape[1] !== d)
    throw new ShapeError(`fusedLinearLogprobs: the weight ${weight} must be [V, ${d}] for hidden ${hidden}`);
  if (targets.rank !== hidden.rank - 1)
    throw new ShapeError(`fusedLinearLogprobs: targets ${targets} must drop the last axis of ${hidden}`);
  if (!Number.isInteger(chunks) || chunks < 1)
    throw new ShapeError(`fusedLinearLogprobs: chunks must be a positive integer, got ${chunks}`);
  if (!(temperature > 0))
    throw new ShapeError(`fusedLinearLogprobs: the temperature must be positive, got ${temperature}`);
}

/** A chunk's rows h [rows, D], targets t [rows, 1], softmax, and log-probs (and entropies) [rows, 1 or 2]. */
interface Chunk {
  h: Tensor;
  t: Tensor;
  p: Tensor;
  stats: Tensor;
}

/** The logits h Wᵀ / τ of a chunk's rows (the rows scaled, [rows, D], rather than the logits). */
function logitsOf(h: Tensor, weight: Tensor, temperature: number): Tensor {
  return gemm(temperature === 1 ? h : h.mul(1 / temperature), weight, false, true);
}

/**
 * One chunk's forward: log-sum-exp as max(z) − log(max(softmax(z))) (see nn.logsumexp), the
 * target's log-prob z[t] − lse and, with `withEntropy`, the entropy lse − Σ softmax(z) z.
 */
function chunkOf(h: Tensor, weight: Tensor, t: Tensor, temperature: number, withEntropy: boolean): Chunk {
  const z = logitsOf(h, weight, temperature);
  const p = softmax(z, -1);
  const lse = max(z, -1, true).sub(log(max(p, -1, true)));
  const logp = gatherElements(z, t, -1).sub(lse);
  const stats = withEntropy ? concat([logp, lse.sub(sum(p.mul(z), -1, true))], 1) : logp;
  return { h, t, p, stats };
}

/** A chunk's gradients: dz = w (p − onehot(t)), dh = dz W and, when W trains, dzᵀ h added to `dWeight`. */
function backOf(c: Omit<Chunk, 'stats'>, w: Tensor, weight: Tensor, trainsWeight: boolean, dWeight?: Tensor) {
  const dz = softmaxGradient(c.p, c.t, w);
  const dHidden = gemm(dz, weight);
  // W's gradient once the hidden rows' is made, so that nothing of the chunk but its gradients outlives it.
  return { dHidden, dWeight: trainsWeight ? gemm(dz, after(c.h, dHidden), true, false, dWeight) : undefined };
}

/** The backward's chunks' name (token-chunks.everyNth): apart from the forward's. */
const BACKWARD = "'";

/**
 * The backward over chunks, from the padded rows h, targets t and row weights w [n + K − 1, 1]:
 * each chunk's logits made again once the chunk before has made its gradients (the first once w
 * exists), so the forward cannot make them early and keep them.
 */
function chunkedBackward(
  h: Tensor,
  t: Tensor,
  w: Tensor,
  weight: Tensor,
  chunks: number,
  temperature: number,
  trainsWeight: boolean,
) {
  const dRows: Tensor[] = [];
  let dWeight: Tensor | undefined;
  for (let k = 0; k < chunks; k++) {
    const made = [dRows[k - 1] ?? w, dWeight].filter((x): x is Tensor => x !== undefined);
    const rows = (x: Tensor) => everyNth(x, k, chunks, BACKWARD);
    const hk = afterAll(rows(h), made);
    const p = softmax(logitsOf(hk, weight, temperature), -1);
    const d = backOf({ h: hk, t: cast(rows(t), 'int32'), p }, rows(w), weight, trainsWeight, dWeight);
    dRows.push(d.dHidden);
    dWeight = d.dWeight;
  }
  // Once the last chunk's W gradient is made too, so that its logits' gradient is not held on.
  const dHidden = afterAll(slice(unchunk(dRows, h, chunks, BACKWARD), 0, 0, 1 - chunks), dWeight ? [dWeight] : []);
  return { dHidden, dWeight };
}

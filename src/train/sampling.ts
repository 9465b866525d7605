/**
 * Sampling in the graph. The decoding programs end in a sampling head: the last position's logits
 * go in, the drawn token ids (and their log-probs) come out, so the host never copies out or walks
 * a vocabulary-sized row per token; it only feeds one uniform draw per token from its seeded Rng.
 *
 * - greedy (temperature 0): the first largest logit, in two levels (blocks, then tokens).
 * - temperature alone: inverse-CDF sampling over all of softmax(logits / T): the token is the
 *   first whose running sum passes u · total (in two levels: blocks, then tokens). Exact, up to
 *   float32 rounding.
 * - top-k and/or top-p: TopK gives the candidates' probabilities, largest first; top-p keeps the
 *   smallest prefix of them whose mass (among the candidates) reaches p; the smallest kept
 *   probability is a threshold, and the draw runs over the tokens at or above it, as above. With
 *   top_k the candidates are the top k, so the draw is exact (a token tied with the k-th is kept
 *   too). With top-p alone the candidates are the TOP_P_CANDIDATES most likely tokens: the draw is
 *   exact whenever they hold at least top_p of the probability, and otherwise it drops the tail
 *   past them (every row of a trained language model we have looked at holds 0.9 within far fewer).
 *
 * The host draws u per token in the order of the rows (a group's continuations one after another),
 * so the same seed gives the same tokens whatever the batch holds.
 */
import * as ort from 'onnxruntime-node';
import {
  cast,
  concat,
  cumsum,
  gatherElements,
  greaterOrEqual,
  less,
  lessOrEqual,
  minimum,
  slice,
  topkValues,
  transpose,
  unsqueeze,
  where,
} from '../engine/ops';
import { hostTensor } from '../engine/runtime';
import { Dim, Tensor, constant, input } from '../engine/tensor';
import { Rng } from '../util/rng';

export interface SamplingKnobs {
  /** 0 means greedy. */
  temperature: number;
  /** Keep only the k most likely tokens (0 = all). */
  topK: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = all). */
  topP: number;
}

/** How many candidates top-p alone draws among (sorting the whole vocabulary per token costs more than the model). */
export const TOP_P_CANDIDATES = 1024;

export type SamplingMode = 'greedy' | 'full' | 'truncated';

export function samplingMode(o: SamplingKnobs, vocab: number): SamplingMode {
  if (o.temperature === 0) return 'greedy';
  return (o.topK > 0 && o.topK < vocab) || o.topP < 1 ? 'truncated' : 'full';
}

/**
 * The sampling head over the logits [B, V] that `head` (a linear map, no bias) gives for `hidden`
 * [B, D]: `next` [B] (int32) for greedy, else `next` [B, N] (int32) (N draws per row, one per uniform fed in
 * `uniform` [B, N]) and `logprob` [B, N], each drawn token's log-prob under softmax(logits /
 * temperature), the whole distribution's (what PPO's graphs compute). The temperature divides the
 * hidden state, D numbers a row instead of V. The exponentials are left unnormalised: the draw and
 * the top-p cut only compare them with their sums.
 */
export function samplingHead(
  head: (hidden: Tensor) => Tensor,
  hidden: Tensor,
  mode: SamplingMode,
): Record<string, Tensor> {
  if (mode === 'greedy') return { next: firstLargest(head(hidden)) };
  const scaled = head(hidden.div(input('temperature', 'float32', [])));
  const top = scaled.max(-1, true);
  const weights = scaled.sub(top).exp();
  const drawn = inverseCdf(mode === 'full' ? weights : truncated(weights), input('uniform', 'float32', ['B', 'N']));
  const total = mode === 'full' ? drawn.total : weights.sum(-1, true);
  return { next: drawn.next, logprob: gatherElements(scaled, drawn.next, -1).sub(top).sub(total.log()) };
}

/**
 * The index of each row's largest logit, the first on ties (as ArgMax), for logits [B, V], in two
 * levels over blocks of blockSize tokens: each block's largest, the first block holding the row's
 * largest, then that block's first token to reach it. The logits are read vocabulary-major, [V, B]
 * (how the LM head's W hᵀ gives them: the two transposes cancel), where each reduction runs over
 * whole rows of B. onnxruntime's ArgMax over a vocabulary takes several times as long. A last
 * block short of tokens is filled with copies of the first ones: they come later, so never win.
 */
function firstLargest(logits: Tensor): Tensor {
  const [b, v] = logits.shape as [Dim, number];
  const size = blockSize(v),
    groups = Math.ceil(v / size);
  const byToken = transpose(logits, [1, 0]); // [V, B]
  const padded = groups * size === v ? byToken : concat([byToken, slice(byToken, 0, 0, groups * size - v)], 0);
  const blocks = padded.reshape([groups, size, b]);
  const blockMax = blocks.max(1); // [groups, B]
  const top = blockMax.max(0, true); // [1, B]
  const block = firstReaching(blockMax, top, 0); // [1, B]
  const rows = unsqueeze(block, 1).add(constant(new Int32Array(size), 'int32', [1, size, 1]));
  const token = firstReaching(gatherElements(blocks, rows, 0), unsqueeze(top, 1), 1); // [1, 1, B]
  return block.mul(size).add(token).reshape([b]);
}

/** The index (int32) along `axis` of the first entry of x that reaches `top`: -max(-i where it does). */
function firstReaching(x: Tensor, top: Tensor, axis: number): Tensor {
  const n = x.shape[axis] as number;
  const minusIndex = constant(
    Float32Array.from({ length: n }, (_, i) => -i),
    'float32',
    x.shape.map((d, i) => (i === axis ? n : 1)),
  );
  return cast(where(greaterOrEqual(x, top), minusIndex, -n).max(axis, true).neg(), 'int32');
}

/** weights [B, V] with every token outside the top-k / top-p set zeroed. */
function truncated(weights: Tensor): Tensor {
  const sorted = topkValues(weights, input('candidates', 'int64', [1]));
  const mass = cumsum(sorted, -1);
  const kept = less(mass.sub(sorted), input('top_p', 'float32', []).mul(slice(mass, 1, -1)));
  const threshold = where(kept, sorted, Infinity).neg().max(-1, true).neg();
  return where(greaterOrEqual(weights, threshold), weights, 0);
}

/**
 * Tokens per block of the two-level draw: a divisor of the vocabulary from √V up to 16·√V where
 * there is one (GPT-2's 50257 = 29 · 1733; 49152 = 192 · 256), else 256 and the last block padded.
 */
export function blockSize(v: number): number {
  for (let s = Math.ceil(Math.sqrt(v)); s <= Math.min(v, 16 * Math.sqrt(v)); s++) if (v % s === 0) return s;
  return Math.min(256, v);
}

/**
 * For each u in `uniform` [B, N], the first token whose running sum of `weights` [B, V] (not
 * negative) passes u · total: a draw from weights / total. In two levels, so that no running sum
 * spans the vocabulary (onnxruntime's CumSum is slow): the block (of blockSize tokens) where the running
 * sum over blocks passes u · total, then the token within it. With u at most 1 - 2⁻²³, u · total
 * rounds below the total, so the block has weight; the token is never past its last one of
 * non-zero weight. Also returns the total [B, 1].
 */
function inverseCdf(weights: Tensor, uniform: Tensor): { next: Tensor; total: Tensor } {
  const [b, v] = weights.shape as [Dim, number];
  const size = blockSize(v),
    groups = Math.ceil(v / size);
  const padded = groups * size === v ? weights : concat([weights, slice(weights, 1, 0, groups * size - v).mul(0)], 1);
  const blocks = padded.reshape([b, groups, size]);
  const mass = blocks.sum(-1);
  const upTo = cumsum(mass, -1);
  const total = slice(upTo, 1, -1);
  const target = uniform.mul(total);
  const block = countTrue(lessOrEqual(unsqueeze(upTo, 1), unsqueeze(target, -1)));
  const rest = target.sub(gatherElements(upTo.sub(mass), block, -1));
  const zeros = constant(new Int32Array(size), 'int32', [1, 1, size]);
  const within = cumsum(gatherElements(blocks, unsqueeze(block, -1).add(zeros), 1), -1);
  // The last token of non-zero weight: the first to reach the block's sum.
  const last = countTrue(less(within, within.max(-1, true)));
  const token = minimum(countTrue(lessOrEqual(within, unsqueeze(rest, -1))), last);
  return { next: block.mul(size).add(token), total };
}

/** How many of the last axis are true (int32: WebGPU has no int64 arithmetic). */
const countTrue = (x: Tensor) => cast(cast(x, 'float32').sum(-1), 'int32');

/** The host's feeds for the sampling head's knobs. */
export function samplingFeeds(o: SamplingKnobs, mode: SamplingMode, vocab: number): Record<string, ort.Tensor> {
  if (mode === 'greedy') return {};
  const temperature = hostTensor('float32', Float32Array.of(o.temperature), []);
  if (mode === 'full') return { temperature };
  const candidates = Math.min(vocab, o.topK > 0 ? o.topK : TOP_P_CANDIDATES);
  return {
    temperature,
    top_p: hostTensor('float32', Float32Array.of(o.topP), []),
    candidates: hostTensor('int64', BigInt64Array.of(BigInt(candidates)), [1]),
  };
}

/** u's largest value: u · total then rounds below the total in float32 (see inverseCdf). */
const U_MAX = 1 - 2 ** -23;

/**
 * `uniform` [B, N]: N draws for each row that `drawing` marks, row after row; a row that draws
 * nothing (a finished one still in the batch) gets zeros and takes nothing from the stream.
 */
export function uniforms(rng: Rng, drawing: boolean[], n: number): Record<string, ort.Tensor> {
  const u = new Float32Array(drawing.length * n);
  drawing.forEach((draws, row) => {
    if (draws) for (let j = 0; j < n; j++) u[row * n + j] = Math.min(rng.next(), U_MAX);
  });
  return { uniform: hostTensor('float32', u, [drawing.length, n]) };
}

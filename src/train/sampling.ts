/**
 * Sampling in the graph. The decoding programs end in a sampling head: the last position's logits
 * go in, the drawn token ids (and their log-probs) come out, so the host never copies out or walks
 * a vocabulary-sized row per token; it only feeds one uniform draw per token from its seeded Rng.
 *
 * - greedy (temperature 0): ArgMax.
 * - temperature alone: inverse-CDF sampling over all of softmax(logits / T): CumSum over the
 *   vocabulary, and the token is the first whose running sum passes u · total. Exact.
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
  argmax,
  cast,
  cumsum,
  gatherElements,
  greaterOrEqual,
  less,
  lessOrEqual,
  slice,
  topkValues,
  unsqueeze,
  where,
} from '../engine/ops';
import { hostTensor } from '../engine/runtime';
import { Tensor, input } from '../engine/tensor';
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
 * The sampling head over `logits` [B, V]: `next` [B] for greedy, else `next` [B, N] (N draws per
 * row, one per uniform fed in `uniform` [B, N]) and `logprob` [B, N], each drawn token's log-prob
 * under softmax(logits / temperature), the whole distribution's (what PPO's graphs compute). The
 * exponentials are left unnormalised: the draw and the top-p cut only compare them with their sums.
 */
export function samplingHead(logits: Tensor, mode: SamplingMode): Record<string, Tensor> {
  if (mode === 'greedy') return { next: argmax(logits, -1) };
  const scaled = logits.div(input('temperature', 'float32', []));
  const top = scaled.max(-1, true);
  const weights = scaled.sub(top).exp();
  const running = cumsum(mode === 'full' ? weights : truncated(weights), -1);
  const next = inverseCdf(running, input('uniform', 'float32', ['B', 'N']));
  const total = mode === 'full' ? slice(running, 1, -1) : weights.sum(-1, true);
  return { next, logprob: gatherElements(scaled, next, -1).sub(top).sub(total.log()) };
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
 * For each u in `uniform` [B, N], the first token whose running sum (`running` [B, V], of
 * non-negative weights) passes u · total: a draw from weights / total. With u at most 1 - 2⁻²³,
 * u · total rounds below the total, so the token drawn always has a non-zero weight.
 */
function inverseCdf(running: Tensor, uniform: Tensor): Tensor {
  const target = uniform.mul(slice(running, 1, -1));
  const passed = lessOrEqual(unsqueeze(running, 1), unsqueeze(target, -1));
  return cast(cast(passed, 'float32').sum(-1), 'int64');
}

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

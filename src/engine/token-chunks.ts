/**
 * Chunks of tokens for the fused LM-head functions (./linear-cross-entropy.ts, ./linear-logprobs.ts):
 * a [tokens, vocab] tensor is never made whole, only [tokens / K, vocab] of it at a time. Chunk k
 * is every K-th row from row k, taken by a strided Slice with constant bounds, so the graph holds
 * whatever the number of tokens at run time.
 */
import { cast, concat, cumsum, expand, expandLike, slice, zerosLike } from './ops';
import { node } from './ops-core';
import { Tensor, constant, scalar, typedArray } from './tensor';

/** Bytes of one chunk's logits that `chunkCount` aims at: small next to a model, large enough for fast products. */
export const CHUNK_LOGITS_BYTES = 64 << 20;

/** How many chunks keep the logits of `tokens` tokens over `vocabSize` entries near CHUNK_LOGITS_BYTES each. */
export function chunkCount(tokens: number, vocabSize: number, bytesPerFloat = 4): number {
  const rows = Math.max(1, Math.floor(CHUNK_LOGITS_BYTES / (vocabSize * bytesPerFloat)));
  return Math.max(1, Math.ceil(tokens / rows));
}

/**
 * The gradients a fused head function makes: of the hidden states, of them and the weight, or
 * none (evaluation, a frozen reference). Only these flow back from its result.
 */
export type ChunkGradients = 'hidden' | 'hidden and weight' | 'none';

/**
 * Rows x[start], x[start + step], ... (a strided Slice: constant bounds, whatever the row count).
 * Their count is named after x's, the chunk and `pass`: onnxruntime lets a value take over the freed
 * buffer of another of the same declared shape, so two passes over the same chunks (a forward and
 * the backward that computes it again) name their rows apart, or each forward chunk's buffers
 * would be kept until the backward reached that chunk.
 */
export function everyNth(x: Tensor, start: number, step: number, pass = ''): Tensor {
  const int64 = (v: number) => constant(typedArray('int64', [v]), 'int64');
  const bounds = [int64(start), int64(Number.MAX_SAFE_INTEGER), int64(0), int64(step)];
  return node('Slice', [x, ...bounds], x.dtype, [`${x.shape[0]}/${step}@${start}${pass}`, ...x.shape.slice(1)]);
}

/**
 * Each of `xs` [N, ...] with `extra` rows of zeros after it, so that every chunk has a row: an
 * empty chunk's softmax and max are refused by some providers (WebGPU). The zeros weigh nothing.
 */
export function padRows(xs: Tensor[], extra: number): Tensor[] {
  return xs.map((x) => concat([x, expand(scalar(0, x.dtype), [extra, ...x.shape.slice(1)])], 0));
}

/** The chunks' rows [n/K, D] each (taken in `pass`), back in the order of `like` [n, D] they were taken from. */
export function unchunk(parts: Tensor[], like: Tensor, chunks: number, pass = ''): Tensor {
  // Each row's index in `like` (as a float, exact below 2^24), taken into chunks as the rows were.
  const index = cumsum(expandLike(scalar(1, like.dtype), slice(like, 1, 0, 1)), 0).sub(1); // [n, 1]
  const taken = parts.map((_, k) => everyNth(index, k, chunks, pass));
  const from = cast(concat(taken, 0), 'int32');
  const rows = concat(parts, 0);
  return node('ScatterElements', [zerosLike(like), expandLike(from, rows), rows], like.dtype, like.shape, { axis: 0 });
}

/**
 * The gradient of Σ w · (−log softmax(z)[t]) with respect to the logits z [rows, V], from their
 * softmax p: w (p − onehot(t)), with w [rows, 1] and t [rows, 1] (int). Made from p in place of a
 * one-hot (a scatter-add of −w at each target), so it holds no tensor of the logits' size but p's.
 */
export function softmaxGradient(p: Tensor, t: Tensor, w: Tensor): Tensor {
  return node('ScatterElements', [p.mul(w), t, w.neg()], p.dtype, p.shape, { axis: 1, reduction: 'add' });
}

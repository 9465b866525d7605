/**
 * PPO's episodes and how they are packed into the rollout and update graphs' batches: each row is
 * [left padding, prompt, response, right padding], so response token j of a row is read at one
 * position for every row.
 */
import * as ort from 'onnxruntime-node';
import { hostTensor } from '../engine/runtime';
import { attentionBias, positionIds } from '../model/masks';

/** One sampled response and everything PPO computes about it, per response token. */
export interface Episode {
  prompt: number[];
  response: number[];
  finished: boolean;
  score: number;
  logprobs: Float32Array;
  refLogprobs: Float32Array;
  values: Float32Array;
  kl: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
}

/**
 * Lays episodes out as rows [left padding, prompt, response, right padding] of width W; the graph
 * reads positions 0..W-2 and predicts 1..W-1, so response token j of a row sits at target
 * position P - 1 + j, with P the (shared) prompt width.
 */
export function layout(episodes: Pick<Episode, 'prompt' | 'response'>[], padId: number) {
  const b = episodes.length;
  const p = Math.max(...episodes.map((e) => e.prompt.length));
  const t = p + Math.max(...episodes.map((e) => e.response.length)) - 1;
  const tokens = new Int32Array(b * t).fill(padId),
    targets = new Int32Array(b * t).fill(padId);
  const keyMask = new Float32Array(b * t),
    responseMask = new Float32Array(b * t);
  episodes.forEach((e, row) => {
    const seq = [...Array(p - e.prompt.length).fill(padId), ...e.prompt, ...e.response];
    for (let i = 0; i < seq.length - 1; i++) {
      tokens[row * t + i] = seq[i];
      targets[row * t + i] = seq[i + 1];
      keyMask[row * t + i] = i >= p - e.prompt.length ? 1 : 0;
      responseMask[row * t + i] = i >= p - 1 ? 1 : 0;
    }
  });
  const dims = [b, t];
  const feeds: Record<string, ort.Tensor> = {
    tokens: hostTensor('int32', tokens, dims),
    positions: hostTensor('int32', positionIds(keyMask, b, t, t), dims),
    attn_bias: hostTensor('float32', attentionBias(keyMask, b, t, t), [b, 1, t, t]),
    targets: hostTensor('int32', targets, dims),
    response_mask: hostTensor('float32', responseMask, dims),
  };
  /** Row `row`'s response span of a [B, T] output. */
  const read = (dense: Float32Array, row: number) =>
    dense.slice(row * t + p - 1, row * t + p - 1 + episodes[row].response.length);
  /** Per-episode arrays scattered into a [B, T] input, zero elsewhere. */
  const place = (rows: Float32Array[]) => {
    const out = new Float32Array(b * t);
    rows.forEach((r, row) => out.set(r, row * t + p - 1));
    return hostTensor('float32', out, dims);
  };
  return { feeds, read, place };
}

/** The update graph's inputs for some episodes. */
export function updateFeeds(episodes: Episode[], padId: number): Record<string, ort.Tensor> {
  const l = layout(episodes, padId);
  const dense = (pick: (e: Episode) => Float32Array) => l.place(episodes.map(pick));
  return {
    ...l.feeds,
    old_logprobs: dense((e) => e.logprobs),
    old_values: dense((e) => e.values),
    advantages: dense((e) => e.advantages),
    returns: dense((e) => e.returns),
  };
}

/** A mini-batch cut into (at most) k micro-batches for gradient accumulation. */
export function microBatches<T>(items: T[], k: number): T[][] {
  const size = Math.ceil(items.length / k);
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

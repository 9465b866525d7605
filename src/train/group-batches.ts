/**
 * GRPO's and RLOO's completions and how they are packed into the graphs' batches: rows laid out as
 * PPO's (./ppo-batches.ts), with one advantage per completion.
 */
import * as ort from 'onnxruntime-node';
import { hostTensor } from '../engine/runtime';
import { GroupInputs } from './group-graphs';
import { layout } from './ppo-batches';

/** One sampled completion to a prompt (token ids), and what the rollout computed about it. */
export interface Completion {
  prompt: number[];
  /** Its tokens, ending with a stop token when `finished`. */
  response: number[];
  finished: boolean;
  /** Whether its tokens count in the loss (mask_truncated_completions leaves unfinished ones out). */
  counted: boolean;
  advantage: number;
  /** The policy's per-token log-probs at the rollout, when the run needs them. */
  logprobs?: Float32Array;
  refLogprobs?: Float32Array;
}

/** A completion's summed log-prob over its counted tokens (RLOO's sequence log-prob). */
export function sequenceLogprob(c: Completion, logprobs: Float32Array): number {
  return c.counted ? logprobs.reduce((a, b) => a + b, 0) : 0;
}

/**
 * The update graph's inputs for some completions; `normalizer` is the dapo loss's (completion tokens
 * of the rollout per micro-batch).
 */
export function updateFeeds(
  rows: Completion[],
  padId: number,
  needs: GroupInputs,
  normalizer: number,
): Record<string, ort.Tensor> {
  const l = layout(rows, padId);
  const b = rows.length;
  const feeds: Record<string, ort.Tensor> = {
    ...l.feeds,
    response_mask: l.place(rows.map((r) => new Float32Array(r.response.length).fill(r.counted ? 1 : 0))),
    advantages: hostTensor(
      'float32',
      Float32Array.from(rows, (r) => r.advantage),
      [b],
    ),
  };
  if (needs.old && needs.stage === 'grpo') feeds.old_logprobs = l.place(rows.map((r) => r.logprobs!));
  if (needs.old && needs.stage === 'rloo')
    feeds.old_logps = hostTensor(
      'float32',
      Float32Array.from(rows, (r) => sequenceLogprob(r, r.logprobs!)),
      [b],
    );
  if (needs.klInLoss) feeds.ref_logprobs = l.place(rows.map((r) => r.refLogprobs!));
  if (needs.normalizer) feeds.loss_normalizer = hostTensor('float32', Float32Array.of(normalizer), []);
  return feeds;
}

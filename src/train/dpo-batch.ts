/**
 * DPO's batches: P pairs as 2P right-padded rows (the chosen ones first), with the positions whose
 * target is a response token gathered, since only those are scored (./dpo-loss.ts).
 */
import * as ort from 'onnxruntime-node';
import { hostTensor } from '../engine/runtime';
import { TokenExample, makeBatch } from '../data/batch';
import { DpoPair } from './dpo-data';
import { batchFeeds } from './sft';
import { Batch } from './stage';

/**
 * The graph inputs of a batch's rows: tokens, positions and attention as SFT feeds them, and of
 * each scored position its flat index b·T + t, its target, and its row (one-hot, [rows, N]).
 */
export function scoredRowFeeds(
  rows: readonly TokenExample[],
  padId: number,
): { feeds: Record<string, ort.Tensor>; tokens: number } {
  const b = makeBatch(rows, Math.max(...rows.map((r) => r.ids.length - 1)), padId);
  const scored = Int32Array.from(b.lossMask.keys()).filter((i) => b.lossMask[i] === 1);
  const n = scored.length;
  const rowOf = new Float32Array(b.batch * n);
  scored.forEach((i, k) => (rowOf[Math.floor(i / b.seqLen) * n + k] = 1));
  const { tokens, positions, attn_bias } = batchFeeds(b);
  return {
    feeds: {
      tokens,
      positions,
      attn_bias,
      scored_positions: hostTensor('int32', scored, [n]),
      scored_targets: hostTensor(
        'int32',
        scored.map((i) => b.targets[i]),
        [n],
      ),
      scored_rows: hostTensor('float32', rowOf, [b.batch, n]),
    },
    tokens: b.attentionMask.reduce((a, x) => a + x, 0),
  };
}

/** The rows of P pairs, the chosen ones first (2P rows), as scoredRowFeeds feeds them. */
export function pairRowFeeds(
  pairs: readonly DpoPair[],
  padId: number,
): { feeds: Record<string, ort.Tensor>; tokens: number } {
  return scoredRowFeeds([...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)], padId);
}

/** A training batch of P pairs: their rows and the reference's log-probs of them, weighted by its pairs. */
export function dpoBatch(pairs: readonly DpoPair[], padId: number): Batch {
  const { feeds, tokens } = pairRowFeeds(pairs, padId);
  const reference = (value: (p: DpoPair) => number | undefined) =>
    hostTensor(
      'float32',
      Float32Array.from(pairs, (p) => value(p) ?? NaN),
      [pairs.length],
    );
  return {
    feeds: {
      ...feeds,
      ref_chosen_logps: reference((p) => p.refChosen),
      ref_rejected_logps: reference((p) => p.refRejected),
    },
    weight: pairs.length,
    tokens,
  };
}

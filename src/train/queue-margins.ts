/**
 * A model's margins on a labeling queue: of every pair it has not scored yet, how much it prefers
 * response A to B, appended to the margins cache in its run folder (format in src/data/margins.ts)
 * a batch at a time, so a stopped scoring keeps what it did and the next one goes on from there.
 * A reward model's margin is r(A) − r(B); a DPO policy's is its implicit reward margin
 * (./dpo-margins.ts). Runs in the training process; the labeling view reads the cache.
 */
import { RuntimeOptions } from '../engine/runtime';
import { appendMargins, readMargins, unscoredPairs } from '../data/margins';
import { ComparisonPair, readQueue, responseOf } from '../data/queue';
import { Scorer, rewardSequence } from './scorer';
import { DpoMarginSettings, implicitRewardScorer } from './dpo-margins';

/** Scores pairs: reads what it can of each (undefined: it cannot, e.g. too long), then margins a batch at a time. */
export interface PairScorer<Rows> {
  rows(pair: ComparisonPair): Rows | undefined;
  /** How much the model prefers response A to response B, per pair. */
  margins(batch: Rows[]): Promise<number[]>;
  release(): Promise<void>;
}

export interface QueueMarginOptions {
  /** The model's folder (a reward model, or a DPO policy with `dpo`); also the cache's key for its margins. */
  model: string;
  queue: string;
  /** The margins cache, margins.jsonl in the model's run folder. */
  cache: string;
  /** The model is a DPO policy, scored against its reference. */
  dpo?: DpoMarginSettings;
  runtime?: RuntimeOptions;
  /** Pairs per durable write. */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface QueueMarginSummary {
  /** Pairs scored by this call. */
  scored: number;
  /** Pairs the cache already had. */
  cached: number;
  /** Pairs the model cannot score (longer than it reads), left without a margin. */
  skipped: number;
  stopped: boolean;
}

/** A reward model's margins: r(A) − r(B), each read as in training (rewardSequence). */
async function rewardScorer(model: string, runtime?: RuntimeOptions): Promise<PairScorer<number[][]>> {
  const scorer = await Scorer.load(model, runtime);
  return {
    rows: (pair) => {
      const rows = [pair.response_a, pair.response_b].map((text) =>
        rewardSequence(scorer.tokenizer, pair.prompt, responseOf(pair, text)),
      );
      return rows.every((ids) => ids.length <= scorer.config.nPositions) ? rows : undefined;
    },
    margins: async (batch) => {
      const rewards = await scorer.scoreIds(batch.flat());
      return batch.map((_, k) => rewards[2 * k] - rewards[2 * k + 1]);
    },
    release: () => scorer.release(),
  };
}

/** Scores the queue's unscored pairs with the model and caches their margins. */
export async function scoreQueueMargins(options: QueueMarginOptions): Promise<QueueMarginSummary> {
  const { pairs } = readQueue(options.queue);
  const todo = unscoredPairs(pairs, readMargins(options.cache, options.model).margins);
  const summary: QueueMarginSummary = { scored: 0, cached: pairs.length - todo.length, skipped: 0, stopped: false };
  if (todo.length === 0) return summary;
  const scorer: PairScorer<unknown> = options.dpo
    ? await implicitRewardScorer(options.model, options.dpo, options.runtime)
    : await rewardScorer(options.model, options.runtime);
  const batchSize = options.batchSize ?? 16;
  try {
    const readable = todo.flatMap((pair) => {
      const rows = scorer.rows(pair);
      return rows === undefined ? [] : [{ pair, rows }];
    });
    summary.skipped = todo.length - readable.length;
    for (let i = 0; i < readable.length; i += batchSize) {
      if (options.signal?.aborted) {
        summary.stopped = true;
        break;
      }
      const batch = readable.slice(i, i + batchSize);
      const margins = await scorer.margins(batch.map((b) => b.rows));
      await appendMargins(
        options.cache,
        batch.map(({ pair }, k) => ({ pair_id: pair.pair_id, model: options.model, margin: margins[k] })),
      );
      summary.scored += batch.length;
      options.onProgress?.(summary.scored, readable.length);
    }
  } finally {
    await scorer.release();
  }
  return summary;
}

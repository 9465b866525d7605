/**
 * A reward model's margins on a labeling queue: r(A) − r(B) of every pair it has not scored yet,
 * appended to the margins cache in its run folder (format in src/data/margins.ts) a batch at a
 * time, so a stopped scoring keeps what it did and the next one goes on from there. Runs in the
 * training process; the labeling view reads the cache.
 */
import { RuntimeOptions } from '../engine/runtime';
import { appendMargins, readMargins, unscoredPairs } from '../data/margins';
import { ComparisonPair, readQueue } from '../data/queue';
import { TextOrMessages } from '../data/preference-record';
import { Scorer, rewardSequence } from './scorer';

export interface QueueMarginOptions {
  /** The reward model's folder; also the cache's key for its margins. */
  model: string;
  queue: string;
  /** The margins cache, margins.jsonl in the model's run folder. */
  cache: string;
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
  /** Pairs longer than the model reads, left without a margin. */
  tooLong: number;
  stopped: boolean;
}

/** A response as the store keeps it: text for a text prompt, the assistant's turn for a conversation. */
function response(pair: ComparisonPair, text: string): TextOrMessages {
  return typeof pair.prompt === 'string' ? text : [{ role: 'assistant', content: text }];
}

/** Scores the queue's unscored pairs with the reward model and caches their margins. */
export async function scoreQueueMargins(options: QueueMarginOptions): Promise<QueueMarginSummary> {
  const { pairs } = readQueue(options.queue);
  const todo = unscoredPairs(pairs, readMargins(options.cache, options.model).margins);
  const summary: QueueMarginSummary = { scored: 0, cached: pairs.length - todo.length, tooLong: 0, stopped: false };
  if (todo.length === 0) return summary;
  const scorer = await Scorer.load(options.model, options.runtime);
  const batchSize = options.batchSize ?? 16;
  try {
    const sequences = (pair: ComparisonPair) =>
      [pair.response_a, pair.response_b].map((text) =>
        rewardSequence(scorer.tokenizer, pair.prompt, response(pair, text)),
      );
    const readable = todo.flatMap((pair) => {
      const rows = sequences(pair);
      return rows.every((ids) => ids.length <= scorer.config.nPositions) ? [{ pair, rows }] : [];
    });
    summary.tooLong = todo.length - readable.length;
    for (let i = 0; i < readable.length; i += batchSize) {
      if (options.signal?.aborted) {
        summary.stopped = true;
        break;
      }
      const batch = readable.slice(i, i + batchSize);
      const rewards = await scorer.scoreIds(batch.flatMap((b) => b.rows));
      const margins = batch.map(({ pair }, k) => ({
        pair_id: pair.pair_id,
        model: options.model,
        margin: rewards[2 * k] - rewards[2 * k + 1],
      }));
      await appendMargins(options.cache, margins);
      summary.scored += batch.length;
      options.onProgress?.(summary.scored, readable.length);
    }
  } finally {
    await scorer.release();
  }
  return summary;
}

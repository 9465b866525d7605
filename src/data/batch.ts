/**
 * Token sequences packed into the fixed-shape arrays a training step consumes, and the order in
 * which examples are drawn into batches.
 */
import { Rng } from '../util/rng';

/** One tokenized example: lossMask[i] is 1 where ids[i] is a token the model is trained to write. */
export interface TokenExample {
  ids: number[];
  lossMask: number[];
}

/**
 * A batch for next-token prediction, B rows of T positions, right-padded. Row b holds an example's
 * ids[0..n-2] as inputs and ids[1..n-1] as the targets predicted at each position.
 */
export interface TokenBatch {
  batch: number;
  seqLen: number;
  /** [B*T] input ids, padId after the example. */
  tokens: Int32Array;
  /** [B*T] the next id at each position, padId after the example. */
  targets: Int32Array;
  /** [B*T] 1 where the target is trained on; 0 on padding. */
  lossMask: Float32Array;
  /** [B*T] 1 for real tokens, 0 for padding. */
  attentionMask: Float32Array;
  /** [B*T] 0..n-2 for real tokens, 0 on padding. */
  positions: Int32Array;
}

/** Packs examples into a batch of `seqLen` positions; an example of n ids takes n-1 of them. */
export function makeBatch(examples: readonly TokenExample[], seqLen: number, padId: number): TokenBatch {
  const size = examples.length * seqLen;
  const batch: TokenBatch = {
    batch: examples.length,
    seqLen,
    tokens: new Int32Array(size).fill(padId),
    targets: new Int32Array(size).fill(padId),
    lossMask: new Float32Array(size),
    attentionMask: new Float32Array(size),
    positions: new Int32Array(size),
  };
  examples.forEach(({ ids, lossMask }, b) => {
    const length = ids.length - 1;
    if (length < 1 || length > seqLen) {
      throw new Error(
        `batch row ${b}: an example of ${ids.length} tokens does not fit ${seqLen} positions ` +
          `(it needs 2 to ${seqLen + 1} tokens)`,
      );
    }
    const row = b * seqLen;
    for (let t = 0; t < length; t++) {
      batch.tokens[row + t] = ids[t];
      batch.targets[row + t] = ids[t + 1];
      batch.lossMask[row + t] = lossMask[t + 1];
      batch.attentionMask[row + t] = 1;
      batch.positions[row + t] = t;
    }
  });
  return batch;
}

/** Spreads consecutive epochs far apart in seed space, so nearby run seeds do not share epoch orders. */
const EPOCH_SEED_STRIDE = 0x9e3779b9;

/**
 * Draws batches from a list of items. The items are read as an endless stream of epochs, each a
 * fresh shuffle, and batch k is stream positions [kB, (k+1)B), so a batch may span two epochs.
 * Each epoch's order depends only on (seed, epoch), so batch k is the same whether a run got
 * there directly or resumed from a checkpoint at step k.
 */
export class BatchSampler<T> {
  private cachedEpoch = -1;
  private cachedOrder: number[] = [];

  constructor(
    private readonly items: readonly T[],
    readonly batchSize: number,
    readonly seed: number,
  ) {
    if (items.length === 0) throw new Error('cannot draw batches from an empty list of examples');
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new Error(`batch size must be a positive integer, got ${batchSize}`);
    }
  }

  /** The items of batch `step` (0-based). */
  batch(step: number): T[] {
    const n = this.items.length;
    const picked: T[] = [];
    for (let p = step * this.batchSize; p < (step + 1) * this.batchSize; p++) {
      picked.push(this.items[this.epochOrder(Math.floor(p / n))[p % n]]);
    }
    return picked;
  }

  /** Batches `fromStep`, `fromStep + 1`, ... without end. */
  *batches(fromStep = 0): Generator<T[]> {
    for (let step = fromStep; ; step++) yield this.batch(step);
  }

  private epochOrder(epoch: number): number[] {
    if (epoch !== this.cachedEpoch) {
      const rng = new Rng(this.seed + Math.imul(epoch, EPOCH_SEED_STRIDE));
      this.cachedOrder = rng.shuffle(Array.from(this.items, (_, i) => i));
      this.cachedEpoch = epoch;
    }
    return this.cachedOrder;
  }
}

/**
 * The reference's log-probs of every pair, computed once before training: the reference is frozen,
 * so they never change, and training then needs only the policy's forward pass. They are kept in
 * the run folder (ref_logps.json), so a resumed run reads them back instead of recomputing them;
 * the file holds a fingerprint of what they depend on (the reference model, every row's tokens and
 * mask, IPO's averaging), and a file of other pairs or another reference is computed anew.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { toOnnx } from '../engine/onnx';
import { ModelConfig } from '../model/config';
import { AdapterPlace } from '../model/lora';
import { EmitEvent } from '../protocol/runner';
import { writeFileAtomic } from '../util/files';
import { isPlainObject } from '../util/objects';
import { pairRowFeeds } from './dpo-batch';
import { DpoPair } from './dpo-data';
import { referenceLogpsGraph } from './dpo-loss';
import { Trainer } from './trainer';

export const REFERENCE_LOGPS_FILE = 'ref_logps.json';

export interface ReferenceOptions {
  /** What the reference is (its model folder or preset and size), for the fingerprint. */
  identity: string;
  /** The reference's own adapter, when it has one (its base is under "ref." either way). */
  lora?: AdapterPlace;
  /** IPO's per-token mean in place of the sum. */
  average: boolean;
  batchSize: number;
  /** The most scored tokens of a batch, which size the head's chunks. */
  batchTokens: number;
  padId: number;
  outputDir: string;
  emit: EmitEvent;
}

/**
 * Sets refChosen and refRejected of every pair: read from the run folder's file when it was made
 * for these pairs and this reference, else computed with the weights under "ref." in the trainer's
 * State and saved there.
 */
export async function referenceLogps(
  trainer: Trainer,
  cfg: ModelConfig,
  pairs: DpoPair[],
  options: ReferenceOptions,
): Promise<void> {
  const file = path.join(options.outputDir, REFERENCE_LOGPS_FILE);
  const fingerprint = fingerprintOf(pairs, options);
  const cached = readCache(file, fingerprint, pairs.length);
  const say = (message: string) => options.emit({ type: 'log', level: 'info', message });
  say(
    cached
      ? `reference log-probs of ${pairs.length} pairs read from ${file}`
      : `computing the reference's log-probs of ${pairs.length} pairs, once`,
  );
  const values = cached ?? (await computeLogps(trainer, cfg, pairs, options));
  pairs.forEach((p, i) => {
    p.refChosen = values.chosen[i];
    p.refRejected = values.rejected[i];
  });
  if (cached) return;
  writeFileAtomic(file, [Buffer.from(JSON.stringify({ fingerprint, ...values }))]);
  say(`reference log-probs of ${pairs.length} pairs computed and kept in ${file}`);
}

interface PairValues {
  chosen: number[];
  rejected: number[];
}

async function computeLogps(
  trainer: Trainer,
  cfg: ModelConfig,
  pairs: DpoPair[],
  options: ReferenceOptions,
): Promise<PairValues> {
  const program = await trainer.runtime.load(
    toOnnx(referenceLogpsGraph(cfg, options.average, 'ref.', options.lora, options.batchTokens), 'dpo_reference'),
  );
  const values: PairValues = { chosen: [], rejected: [] };
  try {
    for (let i = 0; i < pairs.length; i += options.batchSize) {
      const batch = pairs.slice(i, i + options.batchSize);
      const out = await program.run(trainer.state.feedsFor(program, pairRowFeeds(batch, options.padId).feeds));
      const logps = Array.from(out.logps.data as Float32Array);
      values.chosen.push(...logps.slice(0, batch.length));
      values.rejected.push(...logps.slice(batch.length));
    }
  } finally {
    await program.release();
  }
  const bad = [...values.chosen, ...values.rejected].find((x) => !Number.isFinite(x));
  if (bad !== undefined) throw new Error(`the reference model gave a log-prob of ${bad}: its weights are not usable`);
  return values;
}

function fingerprintOf(pairs: readonly DpoPair[], options: ReferenceOptions): string {
  const hash = createHash('sha256').update(JSON.stringify([options.identity, options.average]));
  for (const p of pairs) hash.update(JSON.stringify([p.chosen, p.rejected]));
  return hash.digest('hex');
}

/** The file's values when it holds `count` pairs' under `fingerprint`. */
function readCache(file: string, fingerprint: string, count: number): PairValues | undefined {
  if (!fs.existsSync(file)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined; // not ours to trust: computed anew
  }
  if (!isPlainObject(json) || json.fingerprint !== fingerprint) return undefined;
  const numbers = (x: unknown): x is number[] =>
    Array.isArray(x) && x.length === count && x.every((v) => typeof v === 'number');
  return numbers(json.chosen) && numbers(json.rejected) ? { chosen: json.chosen, rejected: json.rejected } : undefined;
}

/**
 * The records the stages train on, read through ./read.ts: prompts (PPO, GRPO, comparisons) and
 * preference pairs (reward model, DPO). Bad records stop the stage, listed as `file:line: problem`;
 * what was read, and in which formats, is in `summary` for the run log. (SFT's examples: ../sft.ts.)
 */
import { assertNoDataErrors } from '../jsonl';
import { TextOrMessages } from '../preference-record';
import { applyUndos, PairOptions, pairsOf, PreferencePair } from '../preferences';
import { PREFERENCE_RECORDS, PROMPT_RECORDS } from './kinds';
import { DataRecord, readDataset, ReadOptions } from './read';

export async function loadPrompts(
  source: string,
  options: ReadOptions = {},
): Promise<{ prompts: DataRecord<TextOrMessages>[]; summary: string }> {
  const { records, errors, summary } = await readDataset(source, PROMPT_RECORDS, options);
  assertNoDataErrors(errors);
  if (!records.length) throw new Error(`${source}: no prompts found`);
  return { prompts: records, summary };
}

/**
 * The preference pairs of `source`: the labeling store's undone labels taken back, and (unless
 * `includeTies`) the comparisons without a winner left out and counted in `skipped`.
 */
export async function loadPreferencePairs(
  source: string,
  options: ReadOptions & PairOptions = {},
): Promise<{ pairs: PreferencePair[]; skipped: number; summary: string }> {
  const { records, errors, summary } = await readDataset(source, PREFERENCE_RECORDS, options);
  const live = applyUndos(records, errors);
  assertNoDataErrors(errors);
  return { ...pairsOf(live, options), summary };
}

/**
 * What a reward model's training found wrong with it (too few decided pairs, held-out accuracy at
 * or below chance), kept in its trainer_state.json, so the stages that score with it, and the
 * editor that starts them, can say so.
 */
import * as path from 'path';
import { readJsonObjectFile } from '../util/json-files';
import { CHECKPOINT_FILES } from './checkpoint-layout';

export const REWARD_WARNINGS_KEY = 'reward_model_warnings';

/** The warnings saved with the reward model in `dir`; none when it has none or cannot be read. */
export function rewardModelWarnings(dir: string): string[] {
  try {
    const warnings = readJsonObjectFile(path.join(dir, CHECKPOINT_FILES.trainerState))[REWARD_WARNINGS_KEY];
    return Array.isArray(warnings) ? warnings.filter((w): w is string => typeof w === 'string') : [];
  } catch {
    return [];
  }
}

/** One sentence for a stage that scores with the reward model in `dir`; undefined when it has no warning. */
export function weakRewardModel(dir: string | undefined): string | undefined {
  const warnings = dir ? rewardModelWarnings(dir) : [];
  return warnings.length ? `the reward model ${dir} is weak: ${warnings.join('; ')}` : undefined;
}

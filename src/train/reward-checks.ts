/**
 * The reward model's checks, before and after training: labels to learn from (none yet, too few
 * decided pairs) and what it learned (held-out accuracy at or below chance). A failed check before
 * training says what to do next; a weak model still finishes, with its warnings saved beside it
 * (src/model/reward-warnings.ts) for the stages that score with it.
 */
import * as fs from 'fs';
import { parseDataSpec } from '../data/formats/source';
import { Experiment } from '../experiment/config';

/**
 * Below this many pairs with a winner, the held-out accuracy rests on a handful of pairs and the
 * model's preferences are mostly noise.
 */
export const MIN_DECIDED_PAIRS = 50;

/** What to do when the local preference file does not exist yet; undefined when it does (or is a Hub dataset). */
export function missingLabels(exp: Experiment, source: string): string | undefined {
  const { path: file, hub } = parseDataSpec(source);
  if (hub || fs.existsSync(file)) return undefined;
  const comparisons = exp.comparisons;
  if (comparisons?.preferences === file) {
    return (
      `${file}: no labels yet (the file does not exist). Next: Generate Comparisons samples pairs of responses ` +
      `into ${comparisons.queue} ("rlhf comparisons" on the command line); label them in the Labeling view ` +
      `(Open Labeling), then train the reward model again.`
    );
  }
  return (
    `${file} (rm.data): the file does not exist. Point rm.data at preference pairs in TRL's format ` +
    '({"prompt", "chosen", "rejected"} per line), or add a "comparisons" section and label pairs in the ' +
    'Labeling view: its labels go to comparisons.preferences.'
  );
}

/** The warning for training on few decided pairs, or undefined. */
export function fewPairs(decided: number, heldOut: number): string | undefined {
  if (decided >= MIN_DECIDED_PAIRS) return undefined;
  const held = heldOut === 0 ? 'none held out to measure it' : `${heldOut} held out to measure it`;
  return (
    `only ${decided} labeled pair${decided === 1 ? '' : 's'} with a winner (${held}), and ` +
    `a reward model needs at least ${MIN_DECIDED_PAIRS}: label more pairs, then train it again`
  );
}

/** The warning for a held-out accuracy at or below chance (0.5), or for none measured. */
export function atChance(evalAccuracy: number | undefined): string | undefined {
  if (evalAccuracy === undefined) return 'its accuracy was not measured (no pairs held out: raise rm.eval_fraction)';
  if (evalAccuracy > 0.5) return undefined;
  return `eval_accuracy ${evalAccuracy.toFixed(2)} is at or below chance (0.50): it does not tell better responses from worse`;
}

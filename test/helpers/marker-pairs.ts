/**
 * Preference pairs with a rule to learn, for the preference trainers' tests (reward model, DPO): the
 * chosen response has " banana" in it, the rejected one does not; both are a few random words
 * besides, so nothing but the marker tells them apart.
 */
import { PreferencePair } from '../../src/data/preferences';
import { Rng } from '../../src/util/rng';

/** The random words of the responses. */
export const MARKER_WORDS = [
  'red',
  'blue',
  'green',
  'cat',
  'dog',
  'runs',
  'sleeps',
  'big',
  'small',
  'tree',
  'river',
  'stone',
];
export const MARKER_ANIMALS = ['cat', 'dog', 'cow', 'bird', 'fox', 'owl', 'bee', 'pig'];

/** `n` pairs drawn from `seed`; `shuffled` swaps chosen and rejected by a coin flip, leaving no rule. */
export function markerPairs(n: number, seed: number, shuffled = false, vocabulary = MARKER_WORDS): PreferencePair[] {
  const rng = new Rng(seed);
  const words = (k: number) => Array.from({ length: k }, () => ` ${vocabulary[rng.int(vocabulary.length)]}`);
  return Array.from({ length: n }, () => {
    const good = words(2 + rng.int(3));
    good.splice(rng.int(good.length + 1), 0, ' banana');
    const pair = {
      prompt: `Tell me about the ${MARKER_ANIMALS[rng.int(MARKER_ANIMALS.length)]}.`,
      chosen: good.join(''),
      rejected: words(3 + rng.int(3)).join(''),
    };
    return shuffled && rng.next() < 0.5 ? { ...pair, chosen: pair.rejected, rejected: pair.chosen } : pair;
  });
}

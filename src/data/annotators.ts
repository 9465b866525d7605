/**
 * Stand-ins for the person who labels, for the headless demo and tests: a word rule, and an
 * annotator who knows reference answers. They label a queue as a person would, one durable label
 * at a time.
 */
import { DataError } from './jsonl';
import { JUDGE_RULE, followsRule, statesAnswer } from './judge';
import { appendPreference } from './preferences';
import { Label, TextOrMessages } from './preference-record';
import { ComparisonPair, labelPair, unlabeledPairs } from './queue';

/**
 * The headless demo's stand-in for a person: prefers the response containing `word` (as a
 * substring, ignoring case). When both or neither contain it, prefers the shorter response
 * (fewer characters once trimmed), and calls it a tie when they are as long as each other.
 */
export function ruleLabel(pair: ComparisonPair, word: string): { label: Label; rationale: string } {
  const has = (text: string) => text.toLowerCase().includes(word.toLowerCase());
  const [aHas, bHas] = [has(pair.response_a), has(pair.response_b)];
  if (aHas !== bHas) return { label: aHas ? 'a' : 'b', rationale: `only one response contains "${word}"` };
  const [aLength, bLength] = [pair.response_a.trim().length, pair.response_b.trim().length];
  const why = aHas ? `both contain "${word}"` : `neither contains "${word}"`;
  if (aLength === bLength) return { label: 'tie', rationale: `${why}, and they are as long as each other` };
  return { label: aLength < bLength ? 'a' : 'b', rationale: `${why}; the shorter one wins` };
}

/** A stand-in for the person who labels, for headless demos and tests. */
export interface Annotator {
  /** Recorded as the label's annotator. */
  name: string;
  judge(pair: ComparisonPair): { label: Label; rationale: string };
}

/** The word rule of ruleLabel as an annotator. */
export function wordAnnotator(word: string): Annotator {
  return { name: `rule:${word}`, judge: (pair) => ruleLabel(pair, word) };
}

const normalized = (text: string) =>
  text
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[.!?。！？]+$/u, '');

/**
 * Whether a response gives one of the prompt's reference answers, compared without case, spacing or
 * final punctuation; undefined when there is no reference for the prompt.
 */
export function givesReference(
  references: Map<string, string[]>,
  prompt: TextOrMessages,
  response: string,
): boolean | undefined {
  const answers = typeof prompt === 'string' ? references.get(prompt.trim()) : undefined;
  return answers?.map(normalized).includes(normalized(response));
}

/** Words of a text for overlap: Latin words, and each Han character on its own. */
function words(text: string): string[] {
  return text.toLowerCase().match(/\p{Script=Han}|[\p{L}\p{N}']+/gu) ?? [];
}

/** Word-overlap F1 of a response against its closest reference answer; undefined without references. */
export function referenceOverlap(
  references: Map<string, string[]>,
  prompt: TextOrMessages,
  response: string,
): number | undefined {
  const answers = typeof prompt === 'string' ? references.get(prompt.trim()) : undefined;
  if (!answers) return undefined;
  const got = words(response);
  return Math.max(
    ...answers.map((answer) => {
      const want = words(answer);
      const left = [...want];
      const common = got.filter((w) => {
        const i = left.indexOf(w);
        return i >= 0 && left.splice(i, 1).length > 0;
      }).length;
      return common === 0 ? 0 : (2 * common) / (got.length + want.length);
    }),
  );
}

/**
 * An annotator who knows the right answers (prompt → accepted answers, e.g. an SFT file's
 * completions): it prefers the response closer to one (word-overlap F1), calls it a tie when both
 * are as close, and skips prompts it has no answer for.
 */
export function referenceAnnotator(references: Map<string, string[]>, name = 'reference'): Annotator {
  return {
    name,
    judge(pair) {
      const a = referenceOverlap(references, pair.prompt, pair.response_a);
      const b = referenceOverlap(references, pair.prompt, pair.response_b);
      if (a === undefined || b === undefined)
        return { label: 'skip', rationale: 'no reference answer for this prompt' };
      if (a === b) return { label: 'tie', rationale: `both as close to the reference answer (F1 ${a.toFixed(2)})` };
      return {
        label: a > b ? 'a' : 'b',
        rationale: `closer to the reference answer (F1 ${Math.max(a, b).toFixed(2)} vs ${Math.min(a, b).toFixed(2)})`,
      };
    },
  };
}

/**
 * The demo's annotator, who follows the judge's rule (./judge.ts) and knows each prompt's answer
 * (prompt → the "answer" column): it prefers the response that follows the rule; when both or
 * neither do, the one that states the answer; else it calls a tie.
 */
export function judgeAnnotator(answers: Map<string, string>, name = 'judge'): Annotator {
  return {
    name,
    judge(pair) {
      const prompt = typeof pair.prompt === 'string' ? pair.prompt : pair.prompt[pair.prompt.length - 1].content;
      const answer = answers.get(prompt.trim());
      const [a, b] = [pair.response_a, pair.response_b];
      const [aRule, bRule] = [followsRule(prompt, a), followsRule(prompt, b)];
      if (aRule !== bRule) return { label: aRule ? 'a' : 'b', rationale: `only one is ${JUDGE_RULE}` };
      const why = aRule ? `both are ${JUDGE_RULE}` : `neither is ${JUDGE_RULE}`;
      const [aRight, bRight] =
        answer === undefined ? [false, false] : [statesAnswer(a, answer), statesAnswer(b, answer)];
      if (aRight !== bRight) return { label: aRight ? 'a' : 'b', rationale: `${why}; only one states "${answer}"` };
      return { label: 'tie', rationale: `${why}, and ${aRight ? 'both state' : 'neither states'} the answer` };
    },
  };
}

/** Labels every unlabeled pair of the queue with the annotator, appending each label durably. */
export async function labelQueue(
  queueFile: string,
  preferencesFile: string,
  annotator: Annotator,
): Promise<{ counts: Record<Label, number>; errors: DataError[] }> {
  const { unlabeled, errors } = unlabeledPairs(queueFile, preferencesFile);
  const counts: Record<Label, number> = { a: 0, b: 0, tie: 0, both_bad: 0, skip: 0 };
  for (const pair of unlabeled) {
    const { label, rationale } = annotator.judge(pair);
    await appendPreference(preferencesFile, labelPair(pair, label, { rationale, annotator: annotator.name }));
    counts[label]++;
  }
  return { counts, errors };
}

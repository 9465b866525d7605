/**
 * Reward functions for GRPO and RLOO (the experiment's "reward_funcs"): every exported function is
 * one reward, called with the rollout's prompts and completions and the other columns of
 * prompts.jsonl ("answer" here), and returns one number per completion, or null where it does not
 * apply. Edit them while a run trains: the next rollout uses the new version. Set a breakpoint and
 * start the run with "RLHF: Debug Run…" to step through them; "RLHF: Test Reward Functions" shows
 * what they give a few sampled completions, without training.
 */

type Prompt = string | { role: string; content: string }[];
type Completion = string | { role: string; content: string }[];

interface RewardArgs {
  prompts: Prompt[];
  completions: Completion[];
  completionIds: number[][];
  /** The "answer" column of prompts.jsonl, one per completion. */
  answer: (string | null | undefined)[];
  logMetric: (name: string, value: number) => void;
}

const text = (c: Completion | Prompt): string => (typeof c === 'string' ? c : c[c.length - 1].content);
const isChinese = (s: string) => /[\u4e00-\u9fff]/.test(s);

/** Format: one sentence, ending with a full stop (English "." or Chinese "。"). */
export function oneSentence({ completions }: RewardArgs): number[] {
  return completions.map((c) => (/^[^.。?？!！]+[.。]$/.test(text(c).trim()) ? 1 : 0));
}

/** Exact match: the completion states the prompt's "answer"; null for a prompt without one. */
export function statesAnswer({ completions, answer, logMetric }: RewardArgs): (number | null)[] {
  const scores = completions.map((c, i): number | null => {
    const expected = answer[i];
    if (!expected) return null;
    return text(c).toLowerCase().includes(expected.toLowerCase()) ? 1 : 0;
  });
  const scored = scores.filter((s): s is number => s !== null);
  if (scored.length) logMetric('answers/accuracy', scored.reduce((a, b) => a + b, 0) / scored.length);
  return scores;
}

/** Length: 1 for answers of at most 16 tokens, falling linearly to 0 at 32. */
export function concise({ completionIds }: RewardArgs): number[] {
  return completionIds.map((ids) => Math.max(0, Math.min(1, (32 - ids.length) / 16)));
}

/** Language: the answer is in the language of the question (Chinese or not). */
export function sameLanguage({ prompts, completions }: RewardArgs): number[] {
  return completions.map((c, i) => (isChinese(text(c)) === isChinese(text(prompts[i])) ? 1 : 0));
}

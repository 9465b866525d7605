/**
 * The demo's judge: a fixed, documented rule that scores an answer without any model, so the
 * policies can be compared by something other than the reward model they were trained against.
 * An answer passes when it is one sentence ending with a full stop ("." or "。") in the language
 * of the question (Chinese for a question with Chinese characters, else not); it is correct when it
 * states the prompt's reference answer (the "answer" column of the demo's prompt files).
 */

/** The rule in words, for logs, labels' rationales and reports. */
export const JUDGE_RULE = "one sentence ending with a full stop, in the question's language";

const hasChinese = (text: string) => /\p{Script=Han}/u.test(text);

/** One sentence: no sentence-ending mark before the final full stop. */
const ONE_SENTENCE = /^[^.。?？!！]+[.。]$/u;

/** Whether a response follows the judge's rule for its prompt. */
export function followsRule(prompt: string, response: string): boolean {
  const text = response.trim();
  return ONE_SENTENCE.test(text) && hasChinese(text) === hasChinese(prompt);
}

/** Whether a response states the reference answer (as a substring, ignoring case). */
export function statesAnswer(response: string, answer: string): boolean {
  return response.toLowerCase().includes(answer.toLowerCase());
}

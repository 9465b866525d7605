/**
 * Prompt datasets of the online stages (PPO, GRPO, RLOO): `{"prompt": text or chat messages}` per
 * line (TRL's "prompt" column), any other columns kept for the reward functions.
 */
import { readJsonl, assertNoDataErrors } from '../data/jsonl';
import { parsePrompt, TextOrMessages } from '../data/preference-record';
import { Tokenizer, promptIds } from '../model/tokenizer';

export interface Prompt {
  /** How it shows in the samples table: its text, or a conversation's last message. */
  text: string;
  prompt: TextOrMessages;
  /** Its token ids: plain text as is, a conversation through the chat format with the assistant's turn opened. */
  ids: number[];
  /** The record's other columns. */
  columns: Record<string, unknown>;
}

/** The prompts of `file`, tokenized for the policy. */
export function readPrompts(file: string, tokenizer: Tokenizer, chat = tokenizer.chat()): Prompt[] {
  const { records, errors } = readJsonl(file, ({ prompt, ...columns }) => ({ prompt: parsePrompt(prompt), columns }));
  assertNoDataErrors(errors);
  if (!records.length)
    throw new Error(`${file}: no prompts found (expected {"prompt": text or chat messages} per line)`);
  return records.map(({ value: { prompt, columns } }) => ({
    text: typeof prompt === 'string' ? prompt : prompt[prompt.length - 1].content,
    prompt,
    ids: promptIds(tokenizer, chat, prompt),
    columns,
  }));
}

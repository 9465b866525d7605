/**
 * Prompt datasets of the online stages (PPO, GRPO, RLOO): the prompts of any records
 * src/data/formats reads (TRL's "prompt" column, text or chat messages, or another format's
 * prompt), each with its record's other columns for the reward functions.
 */
import { ColumnMapping } from '../data/formats/read';
import { loadPrompts } from '../data/formats/stage-data';
import { TextOrMessages } from '../data/preference-record';
import { Tokenizer, promptIds } from '../model/tokenizer';
import { promptText } from './samples';

export interface Prompt {
  /** How it shows in the samples table: its text, or a conversation's last message. */
  text: string;
  prompt: TextOrMessages;
  /** Its token ids: plain text as is, a conversation through the chat format with the assistant's turn opened. */
  ids: number[];
  /** The record's other columns. */
  columns: Record<string, unknown>;
}

/** The prompts of a data field, tokenized for the policy, and what was read (for the run log). */
export async function readPrompts(
  source: string,
  tokenizer: Tokenizer,
  chat = tokenizer.chat(),
  columns?: ColumnMapping,
): Promise<{ prompts: Prompt[]; summary: string }> {
  const read = await loadPrompts(source, { columns, templated: chat.templated });
  const prompts = read.prompts.map(({ value: { prompt, columns } }) => ({
    text: promptText(prompt),
    prompt,
    ids: promptIds(tokenizer, chat, prompt),
    columns,
  }));
  return { prompts, summary: read.summary };
}

/**
 * What the stages other than SFT read (SFT's examples: ../sft.ts), and the formats they read it in
 * (tried in order, by the fields a record has):
 *
 * - preference pairs (reward model, DPO): ShareGPT or Alpaca prompts with "chosen"/"rejected",
 *   and TRL's preference format (text or messages, explicit or implicit prompt, HH-RLHF
 *   transcripts, with the labeling store's labels and undos);
 * - prompts (PPO, GRPO, comparisons): TRL's {"prompt"}, or the prompt of any record above (its
 *   conversation up to the reply, its instruction).
 */
import { ChatMessage } from '../../model/chat';
import { fieldError } from '../jsonl';
import { parsePreferenceRecord, parsePrompt, TextOrMessages } from '../preference-record';
import { implicitTextPrompt, parseUndo, StoreLine } from '../preferences';
import {
  SHAREGPT_EXPECTS,
  alpacaPrompt,
  nonEmptyText,
  responseLike,
  shareGptMessages,
  shareGptTurn,
  withoutFinalReply,
} from './community';
import { RecordFormat, RecordKind } from './read';

/** Preference records; "undo" lines of the labeling store take back an earlier label. */
export const PREFERENCE_RECORDS: RecordKind<StoreLine> = {
  formats: [
    {
      name: 'ShareGPT preference pairs',
      marks: ['conversations'],
      expects: `${SHAREGPT_EXPECTS} with "chosen" and "rejected" turns`,
      convert: (fields) => {
        const prompt = withoutFinalReply(shareGptMessages(fields.conversations), 'conversations');
        const reply = (field: string): ChatMessage[] => {
          const value = fields[field];
          if (typeof value === 'string') return [{ role: 'assistant', content: nonEmptyText(value, field) }];
          const turn = shareGptTurn(value, field);
          if (turn.role !== 'assistant') throw fieldError(`${field}.from`, 'must be "gpt"', fieldValue(value, 'from'));
          return [turn];
        };
        return { prompt, chosen: reply('chosen'), rejected: reply('rejected') };
      },
    },
    {
      name: 'Alpaca preference pairs',
      marks: ['instruction'],
      expects: 'Alpaca {"instruction", "input", "chosen", "rejected"}',
      convert: (fields, { templated = false }) => {
        const prompt = alpacaPrompt(fields, templated);
        return {
          prompt,
          chosen: responseLike(prompt, fields.chosen, 'chosen'),
          rejected: responseLike(prompt, fields.rejected, 'rejected'),
        };
      },
    },
    {
      name: (r: StoreLine) =>
        'undo' in r
          ? 'undos of earlier labels'
          : !('chosen' in r)
            ? 'comparisons labeled without a winner'
            : `TRL${typeof r.prompt === 'string' ? '' : ' conversational'} preference pairs`,
      marks: ['chosen', 'rejected', 'response_a', 'response_b', 'undo'],
      expects: 'TRL {"prompt", "chosen", "rejected"} or {"chosen", "rejected"} (implicit prompt)',
      convert: (fields): StoreLine => {
        if (fields.undo != null) return parseUndo(fields);
        const implicit = fields.prompt == null && typeof fields.chosen === 'string';
        return parsePreferenceRecord(implicit ? { ...fields, ...implicitTextPrompt(fields) } : fields);
      },
    },
  ],
};

export const PROMPT_RECORDS: RecordKind<TextOrMessages> = {
  formats: [
    {
      name: (p) => `TRL${typeof p === 'string' ? '' : ' conversational'} prompts`,
      marks: ['prompt'],
      expects: 'TRL {"prompt": text or messages}',
      convert: (fields) => parsePrompt(fields.prompt),
    },
    {
      name: 'TRL conversational messages (up to the reply)',
      marks: ['messages'],
      expects: 'TRL {"messages"}',
      convert: (fields) =>
        withoutFinalReply(asMessages(parsePrompt(fields.messages, 'messages'), 'messages'), 'messages'),
    },
    {
      name: 'ShareGPT conversations (up to the reply)',
      marks: ['conversations'],
      expects: SHAREGPT_EXPECTS,
      convert: (fields) => withoutFinalReply(shareGptMessages(fields.conversations), 'conversations'),
    },
    {
      name: 'Alpaca instructions',
      marks: ['instruction'],
      expects: 'Alpaca {"instruction", "input"}',
      convert: (fields, { templated = false }) => alpacaPrompt(fields, templated),
    },
  ] satisfies RecordFormat<TextOrMessages>[],
};

function asMessages(value: TextOrMessages, field: string): ChatMessage[] {
  if (typeof value === 'string') throw fieldError(field, 'must be a list of messages', value);
  return value;
}

function fieldValue(value: unknown, key: string): unknown {
  return (value as Record<string, unknown>)[key];
}

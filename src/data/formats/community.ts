/**
 * The two formats most instruction data outside TRL comes in:
 *
 * Alpaca (Stanford Alpaca, and most "instruction" datasets): {"instruction", "input", "output"},
 * "input" optional or empty. For a model with a chat template the instruction (and input) is the
 * user's message; otherwise it is rendered with Alpaca's own prompt template, as Alpaca trained.
 *
 * ShareGPT (Vicuna, FastChat, LLaMA-Factory): {"conversations": [{"from": "human", "value": …},
 * {"from": "gpt", "value": …}]}, with "system" turns too; the roles map to user, assistant and
 * system.
 */
import { ChatMessage, ChatRole } from '../../model/chat';
import { expectObject, fieldError } from '../jsonl';
import { TextOrMessages } from '../preference-record';

/** The formats as the error about a record of no known format shows them. */
export const SHAREGPT_EXPECTS = 'ShareGPT {"conversations": [{"from": "human" | "gpt" | "system", "value"}]}';
export const ALPACA_EXPECTS = 'Alpaca {"instruction", "input", "output"}';

const ALPACA_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n';
const ALPACA_NO_INPUT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Response:\n';

/** The prompt of an Alpaca record: the template's text, or (templated) the user's message. */
export function alpacaPrompt(fields: Record<string, unknown>, templated: boolean): TextOrMessages {
  const instruction = nonEmptyText(fields.instruction, 'instruction');
  const input = fields.input === undefined || fields.input === null ? '' : text(fields.input, 'input');
  if (templated) {
    const content = input.trim() ? `${instruction}\n\n${input}` : instruction;
    const system = fields.system ? [{ role: 'system' as const, content: text(fields.system, 'system') }] : [];
    return [...system, { role: 'user', content }];
  }
  const template = input.trim() ? ALPACA_WITH_INPUT : ALPACA_NO_INPUT;
  return template.replace('{instruction}', instruction).replace('{input}', input);
}

/** A response in the form of its prompt: text after a text prompt, an assistant message after messages. */
export function responseLike(prompt: TextOrMessages, value: unknown, field: string): TextOrMessages {
  const reply = nonEmptyText(value, field);
  return typeof prompt === 'string' ? reply : [{ role: 'assistant', content: reply }];
}

const SHAREGPT_ROLES: Record<string, ChatRole> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  system: 'system',
};

/** A ShareGPT conversation's messages. */
export function shareGptMessages(value: unknown, field = 'conversations'): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw fieldError(field, 'must be a non-empty list of turns', value);
  return value.map((turn, i) => shareGptTurn(turn, `${field}[${i}]`));
}

/** One {"from", "value"} turn. */
export function shareGptTurn(value: unknown, field: string): ChatMessage {
  const turn = expectObject(value, field);
  const role = typeof turn.from === 'string' ? SHAREGPT_ROLES[turn.from] : undefined;
  if (!role) throw fieldError(`${field}.from`, 'must be "human", "gpt" or "system"', turn.from);
  return { role, content: nonEmptyText(turn.value, `${field}.value`) };
}

/** The turns before the last run of assistant turns: what a model is prompted with. */
export function withoutFinalReply(messages: ChatMessage[], field: string): ChatMessage[] {
  let end = messages.length;
  while (end > 0 && messages[end - 1].role === 'assistant') end--;
  if (end === 0)
    throw fieldError(`${field}[0].role`, 'must not be the assistant: a prompt needs a turn to answer', 'assistant');
  return messages.slice(0, end);
}

function text(value: unknown, field: string): string {
  if (typeof value !== 'string') throw fieldError(field, 'must be a string', value);
  return value;
}

export function nonEmptyText(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw fieldError(field, 'must be a non-empty string', value);
  return value;
}

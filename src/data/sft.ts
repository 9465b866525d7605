/**
 * Supervised fine-tuning data, in the three formats TRL's SFTTrainer reads, one JSON object a line:
 *
 *   {"prompt": "...", "completion": "..."}   trained on the completion and the EOS after it
 *   {"messages": [{"role": "user", "content": "..."}, ...]}   trained on the assistant turns
 *   {"text": "..."}   trained on every token
 *
 * Each record becomes token ids with a loss mask marking the tokens the model must learn to write.
 * Text starts with the tokenizer's BOS, if it adds one, and ends in EOS; a conversation is
 * rendered by the model's chat format (../model/chat.ts), which marks the assistant turns. Pieces
 * are encoded separately (prompt, then completion), exactly as a prompt is encoded for
 * generation, so the model is trained on the token boundaries it will later see.
 */
import { ChatFormat, ChatMessage, ChatRole, MaskedIds, appendIds } from '../model/chat';
import { Tokenizer, sequenceIds } from '../model/tokenizer';
import { Rng } from '../util/rng';
import { TokenExample } from './batch';
import { assertNoDataErrors, expectNonEmptyString, expectObject, fieldError, readJsonl, RecordError } from './jsonl';

export type SftRecord = { prompt: string; completion: string } | { messages: ChatMessage[] } | { text: string };

export interface SftData {
  examples: TokenExample[];
  /** Examples cut to fit the context; they keep their start and lose the EOS. */
  truncated: number;
  /** Examples left out because nothing they train on survived the cut. */
  dropped: number;
}

/**
 * Reads an SFT file. Bad lines are fatal: the error lists the first few as `file:line: problem`.
 * `contextLength` is the model's; an example keeps at most contextLength + 1 ids, since the last
 * id is only ever a target.
 */
export function loadSft(file: string, tokenizer: Tokenizer, contextLength: number, chat = tokenizer.chat()): SftData {
  const { records, errors } = readJsonl(file, parseSftRecord);
  assertNoDataErrors(errors);
  if (records.length === 0) throw new Error(`${file}: no examples found (expected one JSON object per line)`);
  const data: SftData = { examples: [], truncated: 0, dropped: 0 };
  for (const { value } of records) {
    const example = tokenizeSftRecord(value, tokenizer, chat);
    if (example.ids.length > contextLength + 1) {
      data.truncated++;
      example.ids.length = example.lossMask.length = contextLength + 1;
    }
    // Position 0 is never a target, so only lossMask[1..] counts.
    if (example.lossMask.indexOf(1, 1) === -1) data.dropped++;
    else data.examples.push(example);
  }
  return data;
}

const FORMATS = 'one of: "prompt" and "completion", "messages", or "text"';

/** Validates one line of an SFT file; throws a RecordError naming the field at fault. */
/** Prompt → completions of the {prompt, completion} lines of an SFT file (the answers it teaches). */
export function readReferences(file: string): Map<string, string[]> {
  const { records, errors } = readJsonl(file, parseSftRecord);
  assertNoDataErrors(errors);
  const references = new Map<string, string[]>();
  for (const { value } of records) {
    if ('prompt' in value)
      references.set(value.prompt.trim(), [...(references.get(value.prompt.trim()) ?? []), value.completion]);
  }
  return references;
}

export function parseSftRecord(record: Record<string, unknown>): SftRecord {
  const present = ['prompt', 'completion', 'messages', 'text'].filter((key) => key in record);
  const isPromptCompletion = present.every((key) => key === 'prompt' || key === 'completion');
  if (present.length === 0) throw new RecordError(`record must have ${FORMATS}`);
  if (present.length > 1 && !isPromptCompletion) {
    throw new RecordError(`record mixes formats (${present.map((k) => `"${k}"`).join(', ')}); use ${FORMATS}`);
  }
  if (isPromptCompletion) {
    return {
      prompt: expectNonEmptyString(record.prompt, 'prompt'),
      completion: expectNonEmptyString(record.completion, 'completion'),
    };
  }
  if ('text' in record) return { text: expectNonEmptyString(record.text, 'text') };
  return { messages: parseMessages(record.messages) };
}

const ROLES: readonly string[] = ['system', 'user', 'assistant'] satisfies ChatRole[];

function parseMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw fieldError('messages', 'must be a non-empty array', value);
  const messages = value.map((item, i): ChatMessage => {
    const message = expectObject(item, `messages[${i}]`);
    if (typeof message.role !== 'string' || !ROLES.includes(message.role)) {
      throw fieldError(`messages[${i}].role`, 'must be "system", "user" or "assistant"', message.role);
    }
    return { role: message.role as ChatRole, content: expectNonEmptyString(message.content, `messages[${i}].content`) };
  });
  const last = messages.length - 1;
  if (messages[last].role !== 'assistant') {
    const requirement = 'must be "assistant": a conversation ends with the reply to learn';
    throw fieldError(`messages[${last}].role`, requirement, messages[last].role);
  }
  return messages;
}

/** Token ids and loss mask of one record; a conversation goes through `chat`. */
export function tokenizeSftRecord(
  record: SftRecord,
  tokenizer: Tokenizer,
  chat: ChatFormat = tokenizer.chat(),
): TokenExample {
  if ('messages' in record) return chat.conversation(record.messages);
  const example: MaskedIds = { ids: [], lossMask: [] };
  if ('text' in record) {
    appendIds(example, sequenceIds(tokenizer, record.text), true);
  } else {
    appendIds(example, sequenceIds(tokenizer, record.prompt), false);
    appendIds(example, tokenizer.encode(record.completion), true);
  }
  appendIds(example, [tokenizer.eosId], true);
  return example;
}

/**
 * Shuffles a copy with `rng`, then holds out round(n * evalFraction) items for evaluation: at
 * least one when evalFraction > 0 and there are two or more, and never all of them.
 */
export function splitTrainEval<T>(
  examples: readonly T[],
  evalFraction: number,
  rng: Rng,
): { trainSet: T[]; evalSet: T[] } {
  if (!(evalFraction >= 0 && evalFraction < 1)) throw new Error(`eval fraction must be in [0, 1), got ${evalFraction}`);
  const shuffled = rng.shuffle([...examples]);
  const n = shuffled.length;
  const evalCount = evalFraction > 0 && n >= 2 ? Math.min(n - 1, Math.max(1, Math.round(n * evalFraction))) : 0;
  return { trainSet: shuffled.slice(evalCount), evalSet: shuffled.slice(0, evalCount) };
}

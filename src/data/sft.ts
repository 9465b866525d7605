/**
 * Supervised fine-tuning data, in the formats TRL's SFTTrainer reads:
 *
 *   {"prompt": "...", "completion": "..."}   trained on the completion and the EOS after it
 *   {"prompt": [messages], "completion": [assistant messages]}   trained on the completion's turns
 *   {"messages": [{"role": "user", "content": "..."}, ...]}   trained on the assistant turns
 *   {"text": "..."}   trained on every token
 *
 * and as Alpaca instruction data and ShareGPT conversations (./formats/community.ts), from any
 * data ./formats/read.ts reads (SFT_RECORDS below).
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
import { assertNoDataErrors, expectNonEmptyString, expectObject, fieldError, RecordError } from './jsonl';
import { expectString } from './preference-record';
import { ALPACA_EXPECTS, alpacaPrompt, nonEmptyText, SHAREGPT_EXPECTS, shareGptMessages } from './formats/community';
import { ColumnMapping, readDataset, RecordKind } from './formats/read';

export type SftRecord =
  | { prompt: string; completion: string }
  | { prompt: ChatMessage[]; completion: ChatMessage[] }
  | { messages: ChatMessage[] }
  | { text: string };

export const SFT_RECORDS: RecordKind<SftRecord> = {
  formats: [
    {
      name: 'ShareGPT conversations',
      marks: ['conversations'],
      expects: SHAREGPT_EXPECTS,
      convert: (fields) => ({ messages: endsWithReply(shareGptMessages(fields.conversations), 'conversations') }),
    },
    {
      name: 'Alpaca instruction data',
      marks: ['instruction'],
      expects: ALPACA_EXPECTS,
      convert: (fields, { templated = false }) => {
        const prompt = alpacaPrompt(fields, templated);
        const output = nonEmptyText(fields.output, 'output');
        return typeof prompt === 'string'
          ? { prompt, completion: output }
          : { messages: [...prompt, { role: 'assistant', content: output }] };
      },
    },
    {
      name: (r) =>
        'text' in r
          ? 'TRL language-modeling text'
          : 'messages' in r
            ? 'TRL conversational messages'
            : `TRL${Array.isArray(r.prompt) ? ' conversational' : ''} prompt-completion`,
      marks: ['prompt', 'completion', 'messages', 'text'],
      expects: 'TRL {"prompt", "completion"}, {"messages"} or {"text"}',
      convert: parseSftRecord,
    },
  ],
};

export interface SftData {
  examples: TokenExample[];
  /** Examples cut to fit the context; they keep their start and lose the EOS. */
  truncated: number;
  /** Examples left out because nothing they train on survived the cut. */
  dropped: number;
  /** What was read, in which formats, for the run log. */
  summary: string;
}

/**
 * Reads SFT data (a data field: file, dataset folder or downloaded Hub dataset). Bad records are
 * fatal: the error lists the first few as `file:line: problem`. `contextLength` is the model's; an
 * example keeps at most contextLength + 1 ids, since the last id is only ever a target.
 */
export async function loadSft(
  source: string,
  tokenizer: Tokenizer,
  contextLength: number,
  chat = tokenizer.chat(),
  columns?: ColumnMapping,
): Promise<SftData> {
  const { records, errors, summary } = await readDataset(
    source,
    SFT_RECORDS,
    { columns, templated: chat.templated },
    (record) => tokenizeSftRecord(record, tokenizer, chat),
  );
  assertNoDataErrors(errors);
  if (records.length === 0) throw new Error(`${source}: no examples found`);
  const data: SftData = { examples: [], truncated: 0, dropped: 0, summary };
  for (const { value: example } of records) {
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

/** Prompt → completions of the text prompt-completion records of SFT data (the answers it teaches). */
export async function readReferences(source: string, columns?: ColumnMapping): Promise<Map<string, string[]>> {
  const { records, errors } = await readDataset(source, SFT_RECORDS, { columns });
  assertNoDataErrors(errors);
  const references = new Map<string, string[]>();
  for (const { value } of records) {
    if ('prompt' in value && typeof value.prompt === 'string' && typeof value.completion === 'string')
      references.set(value.prompt.trim(), [...(references.get(value.prompt.trim()) ?? []), value.completion]);
  }
  return references;
}

/** Validates one record in TRL's SFT formats; throws a RecordError naming the field at fault. */
export function parseSftRecord(record: Record<string, unknown>): SftRecord {
  const present = ['prompt', 'completion', 'messages', 'text'].filter((key) => key in record);
  const isPromptCompletion = present.every((key) => key === 'prompt' || key === 'completion');
  if (present.length === 0) throw new RecordError(`record must have ${FORMATS}`);
  if (present.length > 1 && !isPromptCompletion) {
    throw new RecordError(`record mixes formats (${present.map((k) => `"${k}"`).join(', ')}); use ${FORMATS}`);
  }
  if (isPromptCompletion && Array.isArray(record.prompt)) {
    const prompt = parseMessages(record.prompt, 'prompt', false);
    const completion = parseMessages(record.completion, 'completion');
    const turn = completion.findIndex((m) => m.role !== 'assistant');
    if (turn !== -1)
      throw fieldError(
        `completion[${turn}].role`,
        'must be "assistant": the prompt holds the other turns',
        completion[turn].role,
      );
    return { prompt, completion };
  }
  if (isPromptCompletion) {
    return {
      prompt: expectNonEmptyString(record.prompt, 'prompt'),
      completion: expectNonEmptyString(record.completion, 'completion'),
    };
  }
  if ('text' in record) return { text: expectNonEmptyString(record.text, 'text') };
  return { messages: endsWithReply(parseMessages(record.messages)) };
}

const ROLES: readonly string[] = ['system', 'user', 'assistant'] satisfies ChatRole[];

function parseMessages(value: unknown, field = 'messages', nonEmpty = true): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw fieldError(field, 'must be a non-empty array', value);
  return value.map((item, i): ChatMessage => {
    const message = expectObject(item, `${field}[${i}]`);
    if (typeof message.role !== 'string' || !ROLES.includes(message.role)) {
      throw fieldError(`${field}[${i}].role`, 'must be "system", "user" or "assistant"', message.role);
    }
    const content = nonEmpty
      ? expectNonEmptyString(message.content, `${field}[${i}].content`)
      : expectString(message.content, `${field}[${i}].content`);
    return { role: message.role as ChatRole, content };
  });
}

/** A conversation to learn from: it ends with the assistant's reply. */
export function endsWithReply(messages: ChatMessage[], field = 'messages'): ChatMessage[] {
  const last = messages.length - 1;
  if (messages[last].role !== 'assistant') {
    const requirement = 'must be "assistant": a conversation ends with the reply to learn';
    throw fieldError(`${field}[${last}].role`, requirement, messages[last].role);
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
  if ('prompt' in record && Array.isArray(record.prompt))
    return completionOnly(record.prompt, record.completion as ChatMessage[], chat);
  const example: MaskedIds = { ids: [], lossMask: [] };
  if ('text' in record) {
    appendIds(example, sequenceIds(tokenizer, record.text), true);
  } else {
    appendIds(example, sequenceIds(tokenizer, record.prompt as string), false);
    appendIds(example, tokenizer.encode(record.completion as string), true);
  }
  appendIds(example, [tokenizer.eosId], true);
  return example;
}

/**
 * A conversational prompt-completion, as TRL trains it: the whole conversation rendered, the loss
 * only after the prompt with the assistant's turn opened (where that is a prefix of the rendering;
 * otherwise on every assistant turn).
 */
function completionOnly(prompt: ChatMessage[], completion: ChatMessage[], chat: ChatFormat): MaskedIds {
  const example = chat.conversation([...prompt, ...completion]);
  const opened = chat.generationPrompt(prompt);
  if (opened.every((id, i) => example.ids[i] === id)) example.lossMask.fill(0, 0, opened.length);
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

/**
 * Text to token ids and back: GPT-2's byte-level BPE (its ranks ship inside js-tiktoken, so nothing
 * is downloaded), or any Hugging Face tokenizer.json (./hf-tokenizer.ts).
 *
 * encode() always reads its input as plain text. Special tokens such as EOS are added by the caller,
 * by id, or by a chat template, so a literal "<|endoftext|>" typed into a data file stays ordinary
 * characters.
 */
import { getEncoding } from 'js-tiktoken';
import { ChatFormat, ChatMessage, plainChat } from './chat';

export interface Tokenizer {
  /** "gpt2", or the path of the tokenizer.json it was loaded from. */
  name: string;
  /** One more than the largest id encode() or the special tokens can produce. */
  vocabSize: number;
  /** The end of a text: appended to plain-text examples, and a response that writes it is finished. */
  eosId: number;
  padId: number;
  /**
   * Starts every plain-text sequence when the tokenizer adds one (Llama 3's <|begin_of_text|>);
   * templates place their own.
   */
  bosId?: number;
  /**
   * Ids that finish a response: eosId first, then generation_config.json's other eos_token_id and
   * the chat template's end-of-turn token.
   */
  stopIds: number[];
  encode(text: string): number[];
  /** Special tokens come out as their text; bytes that do not form a character as U+FFFD (see ./text-stream.ts). */
  decode(ids: number[]): string;
  /**
   * How conversations become tokens: the chat template, rendered with extra `variables` (e.g.
   * { enable_thinking: false }), or the plain format (./chat.ts) when the tokenizer has none.
   */
  chat(variables?: Record<string, unknown>): ChatFormat;
}

/** Text in several scripts, whose ids tell two tokenizers apart. */
const PROBE = 'The reward reads these tokens: 猫吃鱼。 Ünïcödé 🙂 <|endoftext|> 123';

/** Whether two tokenizers give text the same ids (so one model can read the other's tokens). */
export function sameTokenizer(a: Tokenizer, b: Tokenizer): boolean {
  const [x, y] = [a.encode(PROBE), b.encode(PROBE)];
  return a.vocabSize === b.vocabSize && a.eosId === b.eosId && x.length === y.length && x.every((id, i) => id === y[i]);
}

/** A text that starts a sequence: BOS when the tokenizer adds one, then the text's ids. */
export function sequenceIds(tokenizer: Tokenizer, text: string): number[] {
  const ids = tokenizer.encode(text);
  return tokenizer.bosId === undefined ? ids : [tokenizer.bosId, ...ids];
}

/** A prompt to continue, encoded as SFT encodes it: plain text as is, a conversation through the chat format. */
export function promptIds(tokenizer: Tokenizer, chat: ChatFormat, prompt: string | readonly ChatMessage[]): number[] {
  return typeof prompt === 'string' ? sequenceIds(tokenizer, prompt) : chat.generationPrompt(prompt);
}

let gpt2: Tokenizer | undefined;

/** GPT-2's tokenizer; built once, as parsing its 50k merges takes a moment. */
export function gpt2Tokenizer(): Tokenizer {
  if (!gpt2) {
    const bpe = getEncoding('gpt2');
    const [eosId] = bpe.encode('<|endoftext|>', ['<|endoftext|>']);
    // Nothing allowed and nothing disallowed: special-token text is encoded like any other text.
    const encode = (text: string) => bpe.encode(text, [], []);
    const chat = plainChat({ eosId, encode });
    gpt2 = {
      name: 'gpt2',
      vocabSize: eosId + 1,
      eosId,
      padId: eosId,
      stopIds: [eosId],
      encode,
      decode: (ids) => bpe.decode(ids),
      chat: () => chat,
    };
  }
  return gpt2;
}

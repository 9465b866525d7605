/**
 * Decoding generated tokens without splitting a character. A byte-level tokenizer may spread one
 * UTF-8 character over several tokens (GPT-2 writes 狗 as two), and decoding only some of them
 * gives U+FFFD. TextStream holds such a tail back until the tokens that complete it arrive, as
 * text-generation-inference's incremental decoding does: it decodes the few tokens since the last
 * complete text, with the ones before as context, and emits the new text once it no longer ends in
 * U+FFFD. Bytes that never form a character (a model can write a character's first byte and then
 * another character) are left out, and so is a tail that is still incomplete when the stream ends.
 */
import { Tokenizer } from './tokenizer';

const REPLACEMENT = '\uFFFD';

export class TextStream {
  private readonly ids: number[] = [];
  /** Where the context decoded before the new tokens starts. */
  private context = 0;
  /** Tokens before this one have been emitted. */
  private emitted = 0;

  constructor(private readonly tokenizer: Pick<Tokenizer, 'decode'>) {}

  /** The text that `id` completes: '' while the tokens so far end inside a character. */
  push(id: number): string {
    this.ids.push(id);
    const before = this.tokenizer.decode(this.ids.slice(this.context, this.emitted));
    const now = this.tokenizer.decode(this.ids.slice(this.context));
    if (now.length <= before.length || now.endsWith(REPLACEMENT)) return '';
    this.context = this.emitted;
    this.emitted = this.ids.length;
    return now.slice(before.length).replaceAll(REPLACEMENT, '');
  }
}

/** The whole text of `ids` as a TextStream emits it: whole characters only. */
export function decodeWhole(tokenizer: Pick<Tokenizer, 'decode'>, ids: readonly number[]): string {
  const stream = new TextStream(tokenizer);
  return ids.map((id) => stream.push(id)).join('');
}

/** The text of a generated response: without the stop token that finished it, whole characters only. */
export function responseText(tokenizer: Pick<Tokenizer, 'decode' | 'stopIds'>, tokens: readonly number[]): string {
  const finished = tokens.length > 0 && tokenizer.stopIds.includes(tokens[tokens.length - 1]);
  return decodeWhole(tokenizer, finished ? tokens.slice(0, -1) : tokens);
}

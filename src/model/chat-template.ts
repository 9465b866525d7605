/**
 * A tokenizer's Jinja chat template (tokenizer_config.json "chat_template", or chat_template.jinja)
 * rendered with @huggingface/jinja as transformers renders it: `messages`, `add_generation_prompt`,
 * the special tokens' text (`bos_token`, `eos_token`, ...), `raise_exception`, and any extra
 * variables (e.g. Qwen3's `enable_thinking`).
 *
 * Tokens. Special tokens the template writes become their ids; the same text inside a message
 * stays ordinary text (it is escaped for rendering, so the template cannot tell, and encoded as
 * text). The rendered text is encoded piece by piece: cut at the special tokens and at the edges
 * of the assistant turns, so a turn's tokens are the same whether it is trained on or generated.
 *
 * Assistant turns. Templates need not be prefix-consistent (Qwen3 drops the thinking block of
 * earlier turns), so turns are found in the rendering of the whole conversation: turn i starts
 * where the conversation before it, rendered with the generation prompt, stops agreeing with the
 * whole (right after "<|im_start|>assistant\n"), and ends with the first special token the
 * template writes after that (Qwen's "<|im_end|>", Llama 3's "<|eot_id|>"). What follows that
 * token (a newline, say) is template formatting, not trained on.
 */
import { Template } from '@huggingface/jinja';
import { ChatFormat, ChatMessage, MaskedIds, appendIds } from './chat';

export interface ChatTemplateSource {
  /** The Jinja source. */
  template: string;
  /** Where it came from, for errors: e.g. "…/tokenizer_config.json: chat_template". */
  where: string;
  /** Variables every rendering gets: the special tokens' text (bos_token, eos_token, ...). */
  variables: Record<string, unknown>;
  /** The special tokens, text → id. */
  specials: ReadonlyMap<string, number>;
  /** Encodes plain text; never yields a special token's id. */
  encode(text: string): number[];
}

/** Marks special-token text inside message content; a noncharacter, never in real text. */
const MARK = '\uFDD0';

/** [start, end) character offsets of an assistant turn in a rendering. */
type Span = [number, number];

/** The template as a ChatFormat; `variables` are added to every rendering (e.g. { enable_thinking: false }). */
export function templateChat(source: ChatTemplateSource, variables: Record<string, unknown> = {}): ChatFormat {
  let template: Template;
  try {
    template = new Template(source.template);
  } catch (err) {
    throw new Error(`${source.where}: the chat template does not parse: ${(err as Error).message}`);
  }
  const chat = new TemplateChat(template, source, variables);
  return {
    conversation: (messages) => chat.encode(messages, false),
    generationPrompt: (messages) => chat.encode(messages, true).ids,
    replyContent: (written) => written,
    templated: true,
  };
}

class TemplateChat {
  private readonly specialText: RegExp | undefined;

  constructor(
    private readonly template: Template,
    private readonly source: ChatTemplateSource,
    private readonly variables: Record<string, unknown>,
  ) {
    const texts = [...source.specials.keys()].sort((a, b) => b.length - a.length);
    this.specialText = texts.length ? new RegExp(texts.map(escapeRegExp).join('|'), 'g') : undefined;
  }

  /** The rendering's ids, the assistant turns masked. */
  encode(messages: readonly ChatMessage[], addGenerationPrompt: boolean): MaskedIds {
    const text = this.render(messages, addGenerationPrompt);
    const spans = this.assistantSpans(messages, text);
    const out: MaskedIds = { ids: [], lossMask: [] };
    let at = 0;
    for (const [start, end] of spans) {
      appendIds(out, this.encodeText(text.slice(at, start)), false);
      appendIds(out, this.encodeText(text.slice(start, end)), true);
      at = end;
    }
    appendIds(out, this.encodeText(text.slice(at)), false);
    return out;
  }

  private render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    const escaped = messages.map((m, i) => ({ role: m.role, content: this.escape(m.content, i) }));
    try {
      const variables = { ...this.source.variables, ...this.variables };
      return this.template.render({ ...variables, messages: escaped, add_generation_prompt: addGenerationPrompt });
    } catch (err) {
      throw new Error(
        `${this.source.where}: the chat template failed on a conversation of ${messages.length} messages: ${(err as Error).message}`,
      );
    }
  }

  /** Each assistant turn's span in `text`, a rendering of `messages`. */
  private assistantSpans(messages: readonly ChatMessage[], text: string): Span[] {
    const spans: Span[] = [];
    messages.forEach((m, i) => {
      if (m.role !== 'assistant') return;
      const start = commonPrefixLength(this.render(messages.slice(0, i), true), text);
      const end = this.endOfTurn(text, start);
      if (end === undefined || start < (spans.at(-1)?.[1] ?? 0)) {
        throw new Error(
          `${this.source.where}: cannot tell where the chat template ends assistant message ${i} ` +
            '(it must close each assistant turn with a special token, such as the EOS)',
        );
      }
      spans.push([start, end]);
    });
    return spans;
  }

  /** The offset just after the first special token in `text` at or after `from`. */
  private endOfTurn(text: string, from: number): number | undefined {
    const match = this.specialText && text.slice(from).match(new RegExp(this.specialText.source));
    return match ? from + match.index! + match[0].length : undefined;
  }

  /** Ids of rendered text: special tokens the template wrote as their ids, the rest as plain text. */
  private encodeText(text: string): number[] {
    const ids: number[] = [];
    let at = 0;
    for (const match of this.specialText ? text.matchAll(this.specialText) : []) {
      ids.push(...this.encodePlain(text.slice(at, match.index)), this.source.specials.get(match[0])!);
      at = match.index + match[0].length;
    }
    ids.push(...this.encodePlain(text.slice(at)));
    return ids;
  }

  private encodePlain(text: string): number[] {
    return text ? this.source.encode(text.replaceAll(MARK, '')) : [];
  }

  /**
   * Content with its special-token text broken up by MARK: neither the template nor encodeText sees a
   * special token.
   */
  private escape(content: string, index: number): string {
    if (content.includes(MARK))
      throw new Error(`messages[${index}].content holds U+FDD0, a noncharacter that chat rendering reserves`);
    return this.specialText ? content.replace(this.specialText, (token) => token[0] + MARK + token.slice(1)) : content;
  }
}

function commonPrefixLength(x: string, y: string): number {
  let n = 0;
  while (n < x.length && n < y.length && x[n] === y[n]) n++;
  return n;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * How a conversation becomes tokens: the token ids of a whole conversation with a loss mask on the
 * assistant turns, and the ids a model continues to write the next assistant turn. A tokenizer
 * with a chat template renders it (./chat-template.ts); one without (GPT-2) uses the plain format
 * below.
 */
export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** Token ids; lossMask[i] is 1 where ids[i] is a token the model is trained to write. */
export interface MaskedIds {
  ids: number[];
  lossMask: number[];
}

export interface ChatFormat {
  /** The whole conversation; the mask covers each assistant turn: its text and the token that ends it. */
  conversation(messages: readonly ChatMessage[]): MaskedIds;
  /** The conversation so far and the opening of the assistant's next turn: what generation continues. */
  generationPrompt(messages: readonly ChatMessage[]): number[];
  /** The assistant message's content, from the text a model wrote after generationPrompt(). */
  replyContent(written: string): string;
  /** Whether the model's own chat template renders conversations (false: the plain format below). */
  templated: boolean;
}

/** The parts of a tokenizer the plain format uses. */
interface PlainTokens {
  eosId: number;
  encode(text: string): number[];
}

const ROLE_HEADERS: Record<ChatRole, string> = { system: 'System:', user: 'User:', assistant: 'Assistant:' };

/**
 * The plain format, for tokenizers without a chat template. Each turn is a role header, a space
 * and the content. A system or user turn ends with a newline; an assistant turn ends with EOS,
 * which is how generation knows the reply is over:
 *
 *   System: You are a friendly zoo guide.\n
 *   User: What does a cat eat?\n
 *   Assistant: A cat eats fish.<EOS>User: And a dog?\n
 *   Assistant: A dog eats bones.<EOS>
 *
 * Training targets are each assistant turn's " content" and its EOS; headers are never targets.
 */
export function plainChat(tokenizer: PlainTokens): ChatFormat {
  const conversation = (messages: readonly ChatMessage[]): MaskedIds => {
    const out: MaskedIds = { ids: [], lossMask: [] };
    for (const { role, content } of messages) {
      if (role === 'assistant') {
        appendIds(out, tokenizer.encode(ROLE_HEADERS.assistant), false);
        appendIds(out, [...tokenizer.encode(` ${content}`), tokenizer.eosId], true);
      } else {
        appendIds(out, tokenizer.encode(`${ROLE_HEADERS[role]} ${content}\n`), false);
      }
    }
    return out;
  };
  return {
    conversation,
    generationPrompt: (messages) => [...conversation(messages).ids, ...tokenizer.encode(ROLE_HEADERS.assistant)],
    // The format puts a space between "Assistant:" and the content.
    replyContent: (written) => (written.startsWith(' ') ? written.slice(1) : written),
    templated: false,
  };
}

/** Adds ids to `out`, trained on or not. */
export function appendIds(out: MaskedIds, ids: readonly number[], trained: boolean): void {
  for (const id of ids) {
    out.ids.push(id);
    out.lossMask.push(trained ? 1 : 0);
  }
}

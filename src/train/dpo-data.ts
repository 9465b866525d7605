/**
 * DPO's preference pairs as token rows, tokenized and truncated as TRL's DPOTrainer does. The prompt
 * is encoded as generation continues it (text with the BOS, or a conversation through the chat
 * format with the assistant's turn opened); each response follows it with its EOS (a conversation's
 * up to the token that ends its last assistant turn), and only the response's tokens are scored.
 * A prompt over max_prompt_length keeps its end, a response over max_completion_length its start,
 * and a sequence over max_length the end that truncation_mode names.
 *
 * Pairs that cannot teach a preference are left out and counted, never fatal: the same response
 * twice, an empty response, or a response that truncation left nothing of.
 */
import { TokenExample } from '../data/batch';
import { PreferencePair } from '../data/preferences';
import { TextOrMessages } from '../data/preference-record';
import { ChatFormat } from '../model/chat';
import { Tokenizer, promptIds } from '../model/tokenizer';
import { SamplePrompt, promptText } from './samples';
import { rewardSequence } from './scorer';

/** A pair as two rows (prompt + response, the response's tokens masked), with the reference's log-probs once known. */
export interface DpoPair {
  /** The prompt (truncated), to sample from. */
  prompt: SamplePrompt;
  chosen: TokenExample;
  rejected: TokenExample;
  refChosen?: number;
  refRejected?: number;
}

export interface DpoLimits {
  maxPromptLength: number;
  maxCompletionLength?: number;
  maxLength: number;
  truncationMode: 'keep_end' | 'keep_start';
}

export interface DpoData {
  pairs: DpoPair[];
  /** Pairs left out: chosen and rejected the same, an empty response, a response truncation removed. */
  leftOut: { same: number; empty: number; cut: number };
  /** Pairs whose prompt kept only its end, and pairs with a row cut to max_completion_length or max_length. */
  truncated: { prompts: number; sequences: number };
}

/** The pairs as token rows, with what was left out or truncated counted. */
export function tokenizeDpoPairs(
  pairs: readonly PreferencePair[],
  tokenizer: Tokenizer,
  chat: ChatFormat,
  limits: DpoLimits,
): DpoData {
  const data: DpoData = { pairs: [], leftOut: { same: 0, empty: 0, cut: 0 }, truncated: { prompts: 0, sequences: 0 } };
  for (const pair of pairs) {
    if (JSON.stringify(pair.chosen) === JSON.stringify(pair.rejected)) data.leftOut.same++;
    else if (isEmpty(pair.chosen) || isEmpty(pair.rejected)) data.leftOut.empty++;
    else {
      const full = promptIds(tokenizer, chat, pair.prompt);
      const prompt = full.slice(-limits.maxPromptLength);
      const response = (r: TextOrMessages) => row(prompt, completionIds(tokenizer, chat, pair.prompt, full, r), limits);
      const [chosen, rejected] = [response(pair.chosen), response(pair.rejected)];
      if (!chosen.example || !rejected.example) {
        data.leftOut.cut++;
        continue;
      }
      if (prompt.length < full.length) data.truncated.prompts++;
      if (chosen.truncated || rejected.truncated) data.truncated.sequences++;
      data.pairs.push({
        prompt: { text: promptText(pair.prompt), ids: prompt },
        chosen: chosen.example,
        rejected: rejected.example,
      });
    }
  }
  return data;
}

/** A response with no text: an empty string, or messages with empty contents. */
function isEmpty(response: TextOrMessages): boolean {
  return typeof response === 'string' ? !response.trim() : response.every((m) => !m.content.trim());
}

/**
 * The response's ids after the prompt's `prompt` ids: text and its EOS, or what the chat format
 * renders after the prompt up to the end of the response's last assistant turn.
 */
function completionIds(
  tokenizer: Tokenizer,
  chat: ChatFormat,
  promptValue: TextOrMessages,
  prompt: number[],
  response: TextOrMessages,
): number[] {
  if (typeof promptValue === 'string') return [...tokenizer.encode(response as string), tokenizer.eosId];
  const whole = rewardSequence(tokenizer, promptValue, response, chat);
  if (!prompt.every((id, i) => whole[i] === id))
    throw new Error(
      `the chat template of ${tokenizer.name} renders a conversation that does not start with the rendering of its prompt, so a response's tokens cannot be told apart`,
    );
  return whole.slice(prompt.length);
}

/**
 * Prompt + completion as one row, the completion's tokens masked, cut as the limits say; none if
 * nothing of the completion is left to score.
 */
function row(
  prompt: number[],
  completion: number[],
  limits: DpoLimits,
): { example?: TokenExample; truncated: boolean } {
  const kept = completion.slice(0, limits.maxCompletionLength ?? completion.length);
  let ids = [...prompt, ...kept];
  let lossMask = [...prompt.map(() => 0), ...kept.map(() => 1)];
  if (ids.length > limits.maxLength) {
    const [start, end] = limits.truncationMode === 'keep_end' ? [-limits.maxLength, undefined] : [0, limits.maxLength];
    [ids, lossMask] = [ids.slice(start, end), lossMask.slice(start, end)];
  }
  const truncated = ids.length < prompt.length + completion.length;
  // Position 0 is never a target, so only lossMask[1..] counts.
  return { example: lossMask.indexOf(1, 1) === -1 ? undefined : { ids, lossMask }, truncated };
}

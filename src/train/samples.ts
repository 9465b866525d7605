/** Sample generations for people to read: before/after SFT and DPO, during PPO, and from a saved model. */
import { Runtime, RuntimeOptions } from '../engine/runtime';
import { State } from '../engine/state';
import { SampleRow } from '../protocol/runner';
import { responseText } from '../model/text-stream';
import { Tokenizer, sequenceIds } from '../model/tokenizer';
import { Rng } from '../util/rng';
import { TextOrMessages } from '../data/preference-record';
import { GREEDY, Generator, SamplingOptions } from './generate';
import { mergedModel } from './adapters';
import { loadModel, putTensors } from './model-state';

/** A prompt to sample from: as the samples table shows it, and as token ids. */
export interface SamplePrompt {
  text: string;
  ids: number[];
}

/** How a prompt shows in a samples table: its text, or a conversation's last message. */
export function promptText(prompt: TextOrMessages): string {
  return typeof prompt === 'string' ? prompt : prompt[prompt.length - 1].content;
}

/** Greedy by default, so before/after comparisons are not down to sampling luck. */
export function sampleResponses(
  generator: Generator,
  tokenizer: Tokenizer,
  prompts: string[],
  rng: Rng,
  options?: SamplingOptions,
): Promise<SampleRow[]> {
  const encoded = prompts.map((text) => ({ text, ids: sequenceIds(tokenizer, text) }));
  return sampleAnswers(generator, tokenizer, encoded, rng, options);
}

/** sampleResponses for prompts already encoded (conversations through the chat format). */
export async function sampleAnswers(
  generator: Generator,
  tokenizer: Tokenizer,
  prompts: SamplePrompt[],
  rng: Rng,
  options: SamplingOptions = { ...GREEDY, maxNewTokens: 32 },
): Promise<SampleRow[]> {
  const out = await generator.generate(
    prompts.map((p) => p.ids),
    options,
    tokenizer.stopIds,
    rng,
  );
  return out.map((g, i) => ({ prompt: prompts[i].text, response: responseText(tokenizer, g.tokens) }));
}

/** Answers to prompts from a checkpoint directory (its own runtime and weights, released after). */
export async function sampleFromCheckpoint(
  dir: string,
  prompts: string[],
  rng: Rng,
  options: SamplingOptions,
  runtime: RuntimeOptions = {},
): Promise<SampleRow[]> {
  const model = mergedModel(loadModel(dir, 0));
  const state = new State(await Runtime.create(runtime));
  putTensors(state, model.params);
  const { tokenizer } = model;
  const generator = await Generator.create(state.runtime, model.config, state, tokenizer.padId);
  try {
    return await sampleResponses(generator, tokenizer, prompts, rng, options);
  } finally {
    await generator.release();
    await state.release();
  }
}

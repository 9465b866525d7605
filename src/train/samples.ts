/** Sample generations for people to read: before/after SFT, and during PPO. */
import { SampleRow } from '../protocol/runner';
import { Tokenizer } from '../model/tokenizer';
import { Rng } from '../util/rng';
import { GREEDY, Generator, SamplingOptions } from './generate';

/** Greedy by default, so before/after comparisons are not down to sampling luck. */
export async function sampleResponses(
  generator: Generator,
  tokenizer: Tokenizer,
  prompts: string[],
  rng: Rng,
  options: SamplingOptions = { ...GREEDY, maxNewTokens: 32 },
): Promise<SampleRow[]> {
  const out = await generator.generate(prompts.map((p) => tokenizer.encode(p)), options, tokenizer.eosId, rng);
  return out.map((g, i) => ({ prompt: prompts[i], response: tokenizer.decode(g.finished ? g.tokens.slice(0, -1) : g.tokens) }));
}

/**
 * A DPO policy's margins on comparison pairs: its implicit reward r(x, y) = β·log(πθ(y|x) / πref(y|x))
 * (Rafailov et al., 2023), so the margin of response A over B is
 * β·[(log πθ(A) − log πref(A)) − (log πθ(B) − log πref(B))], with the log-probs of the responses'
 * tokens as DPO trains on them (tokenized and truncated by the section's settings, IPO's per-token
 * mean in place of the sum).
 */
import { toOnnx } from '../engine/onnx';
import { Runtime, RuntimeOptions } from '../engine/runtime';
import { State } from '../engine/state';
import { mergedModel } from './adapters';
import { DpoSettings } from '../experiment/config';
import { DpoPair, tokenizeDpoPairs } from './dpo-data';
import { dpoLimits } from './dpo';
import { pairRowFeeds } from './dpo-batch';
import { referenceLogpsGraph } from './dpo-loss';
import { ModelSize, loadModel, putTensors } from './model-state';
import { responseOf } from '../data/queue';
import type { PairScorer } from './queue-margins';

export interface DpoMarginSettings {
  /** The reference: the model DPO started from (a folder or preset). */
  reference: string;
  /** For a preset reference: the seed and size it was drawn with. */
  seed: number;
  size?: ModelSize;
  /** The experiment's dpo section: β, the loss (IPO averages the log-probs) and the truncation. */
  section: DpoSettings;
  chatTemplateKwargs?: Record<string, unknown>;
}

/** Scores pairs with the policy at `model` against the settings' reference. */
export async function implicitRewardScorer(
  model: string,
  s: DpoMarginSettings,
  runtime?: RuntimeOptions,
): Promise<PairScorer<DpoPair>> {
  const policy = mergedModel(loadModel(model, s.seed));
  const reference = mergedModel(loadModel(s.reference, s.seed, s.size));
  if (policy.head !== 'lm' || reference.head !== 'lm')
    throw new Error(`${policy.head !== 'lm' ? model : s.reference} is not a language model: no implicit reward`);
  const rt = await Runtime.create(runtime);
  const { beta, loss_type } = s.section;
  const limits = dpoLimits(s.section, policy.config);
  const program = await rt.load(toOnnx(referenceLogpsGraph(policy.config, loss_type === 'ipo', ''), 'dpo_logps'));
  const states = [policy, reference].map((m) => {
    const state = new State(rt);
    putTensors(state, m.params);
    return state;
  });
  const { tokenizer } = policy;
  const chat = tokenizer.chat(s.chatTemplateKwargs);
  /** Each row's log-prob of its response, chosen (A) rows first, under the model that `state` holds. */
  const logps = async (state: State, feeds: ReturnType<typeof pairRowFeeds>['feeds']) =>
    Array.from((await program.run(state.feedsFor(program, feeds))).logps.data as Float32Array);
  return {
    rows: (pair) => {
      const preference = {
        prompt: pair.prompt,
        chosen: responseOf(pair, pair.response_a),
        rejected: responseOf(pair, pair.response_b),
      };
      return tokenizeDpoPairs([preference], tokenizer, chat, limits).pairs[0];
    },
    margins: async (batch) => {
      const { feeds } = pairRowFeeds(batch, tokenizer.padId);
      const [pi, ref] = [await logps(states[0], feeds), await logps(states[1], feeds)];
      const n = batch.length;
      return batch.map((_, k) => beta * (pi[k] - ref[k] - (pi[n + k] - ref[n + k])));
    },
    release: async () => {
      await program.release();
      for (const state of states) await state.release();
    },
  };
}

/**
 * Test Reward Functions: a GRPO or RLOO section's reward functions on a few prompts' completions,
 * without training. The completions are sampled from the section's policy as a rollout samples them;
 * a policy that is a preset with fresh weights writes noise, so then the prompts' own "completion"
 * or "answer" column is scored instead.
 */
import * as os from 'os';
import * as path from 'path';
import { Runtime } from '../engine/runtime';
import { State } from '../engine/state';
import { Experiment } from '../experiment/config';
import { SampleRow } from '../protocol/runner';
import { responseText } from '../model/text-stream';
import { Rng } from '../util/rng';
import { Generator } from './generate';
import { sampleRows } from './group-metrics';
import { GroupStage } from './group-graphs';
import { groupSettings } from './group-rl';
import { LoadedModel, isPreset, loadModel, putTensors } from './model-state';
import { Prompt, readPrompts } from './prompts';
import { Rewards } from './rewards/reward-funcs';

export interface RewardTest {
  experiment: Experiment;
  stage: GroupStage;
  /** Prompts to take at random; each gets num_generations completions when sampled. */
  prompts: number;
  seed: number;
  log: (message: string) => void;
}

/** Every completion with each function's reward and the weighted sum. */
export async function testRewardFunctions(t: RewardTest): Promise<SampleRow[]> {
  const { experiment: exp, stage } = t;
  const s = groupSettings(exp, stage);
  const spec = s.model ?? exp.model;
  const policy = loadModel(spec, exp.seed, exp.model_size);
  const chat = policy.tokenizer.chat(exp.chat_template_kwargs);
  const all = (await readPrompts(s.prompts, policy.tokenizer, chat, s.columns)).prompts;
  const rng = new Rng(t.seed);
  const chosen = rng
    .shuffle([...all.keys()])
    .slice(0, t.prompts)
    .map((i) => all[i]);
  const rewards = await Rewards.create(s.reward_funcs, s.reward_weights, path.join(os.tmpdir(), 'rlhf-reward-funcs'), {
    provider: exp.runtime.provider,
    threads: exp.runtime.threads,
  });
  try {
    const { group, texts, ids } = isPreset(spec)
      ? datasetCompletions(chosen, policy, spec)
      : await sampled(chosen, policy, s, rng, t);
    const scores = await rewards.score({
      prompts: group.map((p) => p.prompt),
      completions: texts,
      completionIds: ids,
      columns: group.map((p) => p.columns),
      trainerState: { global_step: 0, max_steps: s.max_steps },
    });
    return sampleRows(group, texts, scores, texts.length);
  } finally {
    await rewards.release();
  }
}

/** The prompts' own completions (their "completion" or "answer" column), for a policy with fresh weights. */
function datasetCompletions(prompts: Prompt[], policy: LoadedModel, spec: string) {
  const column = ['completion', 'answer'].find((c) => prompts.every((p) => typeof p.columns[c] === 'string'));
  if (!column)
    throw new Error(
      `the policy "${spec}" is a preset with fresh weights, so its samples are noise, and the prompts have no "completion" or "answer" column to score instead: train SFT first, or set the section's "model"`,
    );
  const texts = prompts.map((p) => p.columns[column] as string);
  return { group: prompts, texts, ids: texts.map((text) => policy.tokenizer.encode(text)) };
}

async function sampled(
  prompts: Prompt[],
  policy: LoadedModel,
  s: ReturnType<typeof groupSettings>,
  rng: Rng,
  t: RewardTest,
) {
  const group = prompts.flatMap((p) => Array<Prompt>(s.num_generations).fill(p));
  t.log(`sampling ${group.length} completions (${s.num_generations} per prompt) from ${s.model ?? t.experiment.model}`);
  const state = new State(
    await Runtime.create({ provider: t.experiment.runtime.provider as never, threads: t.experiment.runtime.threads }),
  );
  putTensors(state, policy.params);
  const generator = await Generator.create(state.runtime, policy.config, state, policy.tokenizer.padId);
  try {
    const sampling = {
      maxNewTokens: s.max_completion_length,
      temperature: s.temperature,
      topK: s.top_k,
      topP: s.top_p,
    };
    const out = await generator.generateGroups(
      prompts.map((p) => p.ids),
      s.num_generations,
      sampling,
      policy.tokenizer.stopIds,
      rng,
    );
    return { group, texts: out.map((g) => responseText(policy.tokenizer, g.tokens)), ids: out.map((g) => g.tokens) };
  } finally {
    await generator.release();
    await state.release();
  }
}

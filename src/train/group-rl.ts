/**
 * GRPO (Shao et al. 2024, "DeepSeekMath") and RLOO (Ahmadian et al. 2024) as TRL's GRPOTrainer and
 * RLOOTrainer run them. Each step (a rollout):
 *   1. the policy samples num_generations completions for each of a batch of prompts;
 *   2. the reward functions and reward models score each completion (weighted sum, nulls left out);
 *   3. one forward pass gives the reference's log-probs (beta > 0) and the policy's (num_iterations
 *      > 1, or RLOO's KL in the reward);
 *   4. advantages within each prompt's group: GRPO's (r - mean) / std, RLOO's leave-one-out baseline;
 *   5. num_iterations optimizer updates on the whole rollout (gradient_accumulation_steps micro-batches).
 * The policy is the State's only trained model (with grpo.peft or rloo.peft an adapter on a frozen
 * base); the reference (beta > 0 only) is frozen under "ref." (./policy-models.ts).
 */
import * as path from 'path';
import { Program } from '../engine/runtime';
import { BatchSampler } from '../data/batch';
import { responseText } from '../model/text-stream';
import { Tokenizer } from '../model/tokenizer';
import { EmitEvent } from '../protocol/runner';
import { Rng } from '../util/rng';
import { Experiment, GroupRlSettings } from '../experiment/config';
import { Generation, Generator } from './generate';
import { Completion, sequenceLogprob, updateFeeds } from './group-batches';
import { GroupInputs, GroupStage, groupInputs, rolloutGraph, updateGraph } from './group-graphs';
import { Advantages, grpoAdvantages, rlooAdvantages, weightedRewards } from './group-advantages';
import { completionMetrics, rewardMetrics, sampleRows, updateMetrics } from './group-metrics';
import { checkBatchFits, longest } from './memory';
import { loadModel } from './model-state';
import { layout } from './ppo-batches';
import { Prompt, readPrompts } from './prompts';
import { RewardScores, Rewards } from './rewards/reward-funcs';
import { policyModels } from './policy-models';
import { StepSource } from './stage';
import { Trainer } from './trainer';

export interface GroupRlRun {
  stage: GroupStage;
  experiment: Experiment;
  outputDir: string;
  /** A checkpoint-N directory of an earlier run of this experiment. */
  resumeFrom?: string;
  emit: EmitEvent;
  signal?: AbortSignal;
}

/** The stage's settings, or an error naming the missing section. */
export function groupSettings(exp: Experiment, stage: GroupStage): GroupRlSettings {
  const s = exp[stage];
  if (!s) throw new Error(`the experiment config has no "${stage}" section`);
  return s;
}

export async function runGroupRl(run: GroupRlRun): Promise<{ modelDir: string; stopped: boolean }> {
  const { experiment: exp, stage, emit, outputDir } = run;
  const s = groupSettings(exp, stage);
  const title = stage === 'grpo' ? 'GRPO' : 'RLOO';
  const needs = groupInputs(stage, s);
  const start = loadModel(s.model ?? exp.model, exp.seed, exp.model_size);
  const { places, policy, ...models } = policyModels(start, run, s, { where: `${stage}.peft`, reference: needs.ref });
  const { config: cfg, tokenizer } = policy;
  const read = await readPrompts(s.prompts, tokenizer, tokenizer.chat(exp.chat_template_kwargs), s.columns);
  emit({ type: 'log', level: 'info', message: read.summary });
  const prompts = read.prompts;
  const completions = s.per_device_train_batch_size * s.gradient_accumulation_steps;
  const length = Math.min(cfg.nPositions, longest(prompts.map((p) => p.ids.length)) + s.max_completion_length);
  checkBatchFits(`${stage}.per_device_train_batch_size`, cfg, s.per_device_train_batch_size, length, {
    frozen: !!s.peft,
  });
  const batchTokens = s.per_device_train_batch_size * length; // of an update's micro-batch, and of a rollout's pass
  const rewards = await Rewards.create(s.reward_funcs, s.reward_weights, path.join(outputDir, 'reward-funcs'), {
    provider: exp.runtime.provider,
    threads: exp.runtime.threads,
  });
  const trainer = await Trainer.create({
    stage,
    title,
    experiment: exp,
    settings: s,
    ...models,
    totalSteps: s.max_steps,
    updatesPerStep: s.num_iterations,
    graph: updateGraph(cfg, stage, s, needs, places.policy, batchTokens),
    outputDir,
    emit,
  });
  const rolloutOnnx = rolloutGraph(cfg, s.temperature, needs, places, batchTokens);
  const rollout: Rollout = {
    generator: await Generator.create(trainer.runtime, cfg, trainer.state, tokenizer.padId, '', places.policy),
    forward: rolloutOnnx && (await trainer.runtime.load(rolloutOnnx)),
    rewards,
    tokenizer,
    needs,
  };
  emit({
    type: 'log',
    level: 'info',
    message:
      `${title} on ${prompts.length} prompts: ${s.max_steps} rollouts of ${completions / s.num_generations} prompts × ` +
      `${s.num_generations} completions, reward functions ${(await rewards.functionNames()).join(', ')}, ` +
      `model ${cfg.nLayer} layers, d=${cfg.nEmbd}${needs.ref ? '' : ', no reference model (beta 0)'}`,
  });
  const sampler = new BatchSampler(prompts, completions / s.num_generations, exp.seed);
  const numTokens = Number(models.resumed?.trainerState?.num_tokens ?? 0);
  const steps = groupSteps(trainer, stage, s, exp.seed, sampler, rollout, numTokens);
  const { stopped } = await trainer.run(steps, run.signal);
  await rollout.generator.release();
  await rollout.forward?.release();
  await rewards.release();
  const modelDir = await trainer.saveFinal(stopped, { trainerState: steps.trainerState?.() });
  await trainer.close(stopped);
  return { modelDir, stopped };
}

/** What a step samples, scores and measures with. */
interface Rollout {
  generator: Generator;
  /** The rollout's forward pass (./group-graphs.ts), when the run needs one. */
  forward?: Program;
  rewards: Rewards;
  tokenizer: Tokenizer;
  needs: GroupInputs;
}

function groupSteps(
  trainer: Trainer,
  stage: GroupStage,
  s: GroupRlSettings,
  seed: number,
  sampler: BatchSampler<Prompt>,
  rollout: Rollout,
  numTokens: number,
): StepSource {
  return {
    step: async (at) => {
      const rng = new Rng(seed * 7919 + at); // a function of (seed, step): a resumed run samples alike
      const prompts = sampler.batch(at - 1);
      const group = prompts.flatMap((p) => Array<Prompt>(s.num_generations).fill(p));
      let t0 = Date.now();
      const generations = await sample(rollout, s, prompts, rng);
      const rolloutSeconds = (Date.now() - t0) / 1000;
      t0 = Date.now();
      const texts = generations.map((g) => responseText(rollout.tokenizer, g.tokens));
      const scores = await rollout.rewards.score({
        prompts: group.map((p) => p.prompt),
        completions: texts,
        completionIds: generations.map((g) => g.tokens),
        columns: group.map((p) => p.columns),
        trainerState: { global_step: at - 1, max_steps: trainer.totalSteps },
      });
      const rewardSeconds = (Date.now() - t0) / 1000;
      t0 = Date.now();
      const rows = await forwardPass(trainer, rollout, s, group, generations);
      const referenceSeconds = (Date.now() - t0) / 1000;
      const { advantages, kl } = computeAdvantages(stage, s, rows, scores);
      rows.forEach((r, i) => (r.advantage = advantages.advantages[i]));
      t0 = Date.now();
      const stats = await updates(trainer, s, rows, rollout, (at - 1) * s.num_iterations);
      numTokens += rows.reduce((a, r) => a + r.prompt.length + r.response.length, 0);
      const values: Record<string, number> = {
        ...rewardMetrics(scores, advantages, stage),
        ...completionMetrics(rows),
        ...updateMetrics(stats),
        ...(kl !== undefined && { kl }),
        ...scores.logged,
        num_tokens: numTokens,
        learning_rate: trainer.learningRate(at * s.num_iterations),
        'time/rollout': rolloutSeconds,
        'time/reward': rewardSeconds,
        'time/reference': referenceSeconds,
        'time/update': (Date.now() - t0) / 1000,
        tokens_per_second: rows.reduce((a, r) => a + r.response.length, 0) / rolloutSeconds,
      };
      if (at % s.sample_steps === 0 || at === 1 || at === trainer.totalSteps)
        trainer.samples(sampleRows(group, texts, scores));
      return { latest: values };
    },
    trainerState: () => ({ num_tokens: numTokens }),
  };
}

/** Step 1: num_generations completions of each prompt, its prefill shared by its group. */
function sample(rollout: Rollout, s: GroupRlSettings, prompts: Prompt[], rng: Rng): Promise<Generation[]> {
  const sampling = { maxNewTokens: s.max_completion_length, temperature: s.temperature, topK: s.top_k, topP: s.top_p };
  return rollout.generator.generateGroups(
    prompts.map((p) => p.ids),
    s.num_generations,
    sampling,
    rollout.tokenizer.stopIds,
    rng,
  );
}

/** Step 3: the completions with the log-probs the run needs: the generator's, the reference's from a forward pass. */
async function forwardPass(
  trainer: Trainer,
  rollout: Rollout,
  s: GroupRlSettings,
  group: Prompt[],
  generations: Generation[],
): Promise<Completion[]> {
  const rows: Completion[] = generations.map((g, i) => ({
    prompt: group[i].ids,
    response: g.tokens,
    finished: g.finished,
    counted: g.finished || !s.mask_truncated_completions,
    advantage: 0,
    ...(rollout.needs.rolloutLogprobs && { logprobs: Float32Array.from(g.logprobs) }),
  }));
  if (!rollout.forward) return rows;
  const size = s.per_device_train_batch_size;
  for (let start = 0; start < rows.length; start += size) {
    const chunk = rows.slice(start, start + size);
    const lay = layout(chunk, rollout.tokenizer.padId);
    const out = await rollout.forward.run(trainer.state.feedsFor(rollout.forward, { ...lay.feeds }));
    chunk.forEach((r, i) => (r.refLogprobs = lay.read(out.ref_logprobs.data as Float32Array, i)));
  }
  return rows;
}

/**
 * Step 4: the weighted rewards and their advantages. RLOO subtracts beta · KL (k1, summed over the
 * completion) from each reward first; GRPO's KL is in the loss.
 */
export function computeAdvantages(
  stage: GroupStage,
  s: GroupRlSettings,
  rows: Completion[],
  scores: RewardScores,
): { advantages: Advantages; kl?: number } {
  const rewards = weightedRewards(scores.perFunc, scores.weights);
  if (stage === 'grpo' && 'scale_rewards' in s)
    return { advantages: grpoAdvantages(rewards, s.num_generations, s.scale_rewards) };
  const normalize = 'normalize_advantages' in s && s.normalize_advantages;
  if (!(s.beta > 0)) return { advantages: rlooAdvantages(rewards, s.num_generations, normalize) };
  const kls = rows.map((r) => sequenceLogprob(r, r.logprobs!) - sequenceLogprob(r, r.refLogprobs!));
  const tokens = rows.reduce((a, r) => a + (r.counted ? r.response.length : 0), 0);
  return {
    advantages: rlooAdvantages(
      rewards.map((r, i) => r - s.beta * kls[i]),
      s.num_generations,
      normalize,
    ),
    kl: kls.reduce((a, b) => a + b, 0) / Math.max(tokens, 1),
  };
}

/** Step 5: num_iterations updates, each on the whole rollout in gradient_accumulation_steps micro-batches. */
async function updates(trainer: Trainer, s: GroupRlSettings, rows: Completion[], rollout: Rollout, before: number) {
  const size = s.per_device_train_batch_size;
  const micro = Array.from({ length: Math.ceil(rows.length / size) }, (_, k) => rows.slice(k * size, (k + 1) * size));
  // dapo: every micro-batch's token sum over the rollout's completion tokens, times the micro-batches averaged.
  const normalizer =
    Math.max(
      rows.reduce((a, r) => a + r.response.length, 0),
      1,
    ) / micro.length;
  const feeds = micro.map((m) => updateFeeds(m, rollout.tokenizer.padId, rollout.needs, normalizer));
  const stats: Record<string, number>[] = [];
  for (let k = 0; k < s.num_iterations; k++) stats.push(await trainer.update(feeds, before + k + 1));
  return stats;
}

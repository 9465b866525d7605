/**
 * Stage 3: PPO against a reward, with a per-token KL penalty to the frozen SFT reference, as TRL's
 * PPOTrainer does it. Each iteration:
 *   1. rollout: the policy samples responses to a batch of prompts (KV-cache generator);
 *   2. the logprobs are the policy's as it sampled; one forward pass gives ref_logprobs (reference)
 *      and values (value model); the reward scores each prompt + response;
 *   3. rewards = -kl_coef · kl per token + score on the last token; GAE gives advantages/returns;
 *   4. num_ppo_epochs × num_mini_batches updates of policy and value model on
 *      pg_loss + vf_coef · vf_loss (one AdamW over both).
 * The policy and value model train in one State under the prefixes "policy." and "value.", the
 * reference under "ref.".
 */
import { Program } from '../engine/runtime';
import { BatchSampler } from '../data/batch';
import { responseText } from '../model/text-stream';
import { Tokenizer } from '../model/tokenizer';
import { EmitEvent, SampleRow } from '../protocol/runner';
import { Rng } from '../util/rng';
import { Experiment, PpoSettings } from '../experiment/config';
import { adaptKlCoef, gae, klEstimate, tokenRewards, whiten } from './advantages';
import { Generator } from './generate';
import { LoadedModel } from './model-state';
import { checkBatchFits, longest } from './memory';
import { Episode, layout, microBatches, updateFeeds } from './ppo-batches';
import { rolloutGraph, updateGraph } from './ppo-graphs';
import { Prompt, readPrompts } from './prompts';
import { POLICY, ppoModels, sftModel } from './ppo-models';
import { Scorer } from './scorer';
import { Trainer } from './trainer';
import { StepSource } from './stage';

/** Scores responses (token ids) to prompts (token ids): one number per pair. */
export type RewardFn = (prompts: number[][], responses: number[][]) => Promise<number[]>;

export interface PpoRun {
  experiment: Experiment;
  outputDir: string;
  /**
   * A checkpoint-N directory of an earlier run of this experiment (with policy/ and value/). The
   * finished run's models are model/ (policy) and value/.
   */
  resumeFrom?: string;
  /** The reward; by default the reward model named in the config (`ppo.reward_model`). */
  reward?: RewardFn;
  emit: EmitEvent;
  signal?: AbortSignal;
}

/**
 * The prompts, said in the log (a batch of episodes as long as the longest must fit in memory), and
 * the most tokens of a rollout's batch and of an update's micro-batch, which size the head's chunks.
 */
async function fittingPrompts(s: PpoSettings, exp: Experiment, sft: LoadedModel, emit: EmitEvent) {
  const { config: cfg, tokenizer } = sft;
  const chat = tokenizer.chat(exp.chat_template_kwargs);
  const { prompts, summary } = await readPrompts(s.prompts, tokenizer, chat, s.columns);
  emit({ type: 'log', level: 'info', message: summary });
  const episodeLength = Math.min(cfg.nPositions, longest(prompts.map((p) => p.ids.length)) + s.response_length);
  const batch = s.per_device_train_batch_size;
  checkBatchFits('ppo.per_device_train_batch_size', cfg, batch, episodeLength, { frozen: !!s.peft });
  const micro = Math.ceil(Math.ceil(batch / s.num_mini_batches) / s.gradient_accumulation_steps);
  return { prompts, rolloutTokens: batch * episodeLength, updateTokens: micro * episodeLength };
}

export async function runPpo(run: PpoRun): Promise<{ modelDir: string; stopped: boolean }> {
  const { experiment: exp, emit, outputDir } = run;
  const s = exp.ppo;
  if (!s) throw new Error('the experiment config has no "ppo" section');
  const sft = sftModel(s, exp);
  const { config: cfg, tokenizer } = sft;
  const { prompts, rolloutTokens, updateTokens } = await fittingPrompts(s, exp, sft, emit);
  const where = { seed: exp.seed, outputDir, resumeFrom: run.resumeFrom, sftName: s.sft_model ?? exp.model };
  const { places, ...models } = ppoModels(where, s, sft);
  const iterations = Math.ceil(s.total_episodes / s.per_device_train_batch_size);
  const trainer = await Trainer.create({
    stage: 'ppo',
    title: 'PPO',
    experiment: exp,
    settings: s,
    ...models,
    totalSteps: iterations,
    updatesPerStep: s.num_ppo_epochs * s.num_mini_batches,
    stepName: 'iteration',
    watchedLoss: 'loss/value_avg',
    graph: updateGraph(cfg, s, places, updateTokens),
    outputDir,
    emit,
  });
  const scorer = run.reward ? undefined : await loadRewardModel(s, exp);
  const policy = { prefix: `${POLICY}.`, lora: places.policy };
  const rollout: Rollout = {
    generator: await Generator.create(trainer.runtime, cfg, trainer.state, tokenizer.padId, policy.prefix, policy.lora),
    scores: await trainer.runtime.load(rolloutGraph(cfg, s.temperature, places, rolloutTokens)),
    reward: run.reward ?? ((p, r) => scorer!.scoreTokens(p, r)),
    tokenizer,
  };
  emit({
    type: 'log',
    level: 'info',
    message: `PPO on ${prompts.length} prompts: ${iterations} iterations of ${s.per_device_train_batch_size} episodes, model ${cfg.nLayer} layers, d=${cfg.nEmbd}`,
  });
  const klCoef = Number(models.resumed?.trainerState?.kl_coef ?? s.kl_coef);
  const steps = ppoSteps(
    trainer,
    s,
    exp.seed,
    new BatchSampler(prompts, s.per_device_train_batch_size, exp.seed),
    rollout,
    klCoef,
  );
  const { stopped } = await trainer.run(steps, run.signal);
  await rollout.generator.release();
  await rollout.scores.release();
  await scorer?.release();
  const modelDir = await trainer.saveFinal(stopped, { trainerState: steps.trainerState?.() });
  await trainer.close(stopped);
  return { modelDir, stopped };
}

/** What an iteration samples and scores with. */
interface Rollout {
  generator: Generator;
  /** The rollout graph: log-probs under the reference, and values. */
  scores: Program;
  reward: RewardFn;
  tokenizer: Tokenizer;
}

/**
 * PPO's steps, one iteration each: (1) the policy samples responses to a batch of prompts, with
 * their logprobs; (2) one forward pass gives ref_logprobs and values, and the reward scores each
 * response; (3) rewards (the KL penalty per token, the score on the last) and GAE's advantages; (4) the updates.
 */
function ppoSteps(
  trainer: Trainer,
  s: PpoSettings,
  seed: number,
  sampler: BatchSampler<Prompt>,
  rollout: Rollout,
  klCoef: number,
): StepSource {
  const updatesPerIteration = s.num_ppo_epochs * s.num_mini_batches;
  let iteration = trainer.startStep;
  return {
    step: async (at) => {
      iteration = at;
      const rng = new Rng(seed * 7919 + at); // a function of (seed, iteration): resume samples alike
      const batch = sampler.batch(at - 1);
      const { episodes, seconds } = await sampleEpisodes(trainer, s, batch, rollout, rng);
      const nonScore = computeAdvantages(episodes, s, klCoef);
      const t0 = Date.now();
      const stats = await ppoUpdates(
        trainer,
        s,
        episodes,
        rng,
        (at - 1) * updatesPerIteration,
        rollout.tokenizer.padId,
      );
      const responseTokens = episodes.reduce((a, e) => a + e.response.length, 0);
      const values: Record<string, number> = {
        ...iterationMetrics(episodes, nonScore, stats),
        lr: trainer.learningRate(at * updatesPerIteration),
        episode: at * s.per_device_train_batch_size,
        kl_coef: klCoef,
        'time/rollout': seconds.rollout,
        'time/score': seconds.score,
        'time/update': (Date.now() - t0) / 1000,
        tokens_per_second: responseTokens / seconds.rollout,
      };
      if (s.adaptive_kl)
        klCoef = adaptKlCoef(
          klCoef,
          values['objective/kl'],
          s.adaptive_kl.target,
          s.adaptive_kl.horizon,
          episodes.length,
        );
      if (at % s.sample_steps === 0 || at === 1 || at === trainer.totalSteps)
        trainer.samples(sampleRows(episodes, batch, rollout.tokenizer));
      return { latest: values };
    },
    trainerState: () => ({ episode: iteration * s.per_device_train_batch_size, kl_coef: klCoef }),
  };
}

/** Steps 1 and 2: the responses, their log-probs under policy and reference, their values and scores. */
async function sampleEpisodes(trainer: Trainer, s: PpoSettings, batch: Prompt[], rollout: Rollout, rng: Rng) {
  let t0 = Date.now();
  const sampling = { maxNewTokens: s.response_length, temperature: s.temperature, topK: 0, topP: 1 };
  const generations = await rollout.generator.generate(
    batch.map((p) => p.ids),
    sampling,
    rollout.tokenizer.stopIds,
    rng,
  );
  const rolloutSeconds = (Date.now() - t0) / 1000;

  t0 = Date.now();
  const shape = generations.map((g, i) => ({ prompt: batch[i].ids, response: g.tokens }));
  const lay = layout(shape, rollout.tokenizer.padId);
  const out = await rollout.scores.run(trainer.state.feedsFor(rollout.scores, lay.feeds));
  const scores = await rollout.reward(
    shape.map((e) => e.prompt),
    shape.map((e) => e.response),
  );
  const bad = scores.find((x) => !Number.isFinite(x));
  if (bad !== undefined) throw trainer.stoppedBy(`the reward gave a non-finite score (${bad})`);
  const episodes: Episode[] = shape.map((e, i) => {
    const logprobs = Float32Array.from(generations[i].logprobs);
    const refLogprobs = lay.read(out.ref_logprobs.data as Float32Array, i);
    const penalty = !generations[i].finished && s.missing_eos_penalty !== undefined ? s.missing_eos_penalty : 0;
    return {
      ...e,
      finished: generations[i].finished,
      score: scores[i] - penalty,
      logprobs,
      refLogprobs,
      values: lay.read(out.values.data as Float32Array, i),
      kl: klEstimate(logprobs, refLogprobs, s.kl_estimator),
      advantages: new Float32Array(0),
      returns: new Float32Array(0),
    };
  });
  return { episodes, seconds: { rollout: rolloutSeconds, score: (Date.now() - t0) / 1000 } };
}

/**
 * Step 3: per-token rewards, then GAE's advantages (whitened) and returns; gives each episode's KL
 * penalty per token.
 */
function computeAdvantages(episodes: Episode[], s: PpoSettings, klCoef: number): Float32Array[] {
  const rewardRows = episodes.map((e) => tokenRewards(e.kl, klCoef, e.score));
  const rewards = s.whiten_rewards
    ? whiten(
        rewardRows.map((r) => r.rewards),
        false,
      )
    : rewardRows.map((r) => r.rewards);
  episodes.forEach((e, i) => Object.assign(e, gae(rewards[i], e.values, s.gamma, s.lam)));
  const whitened = whiten(episodes.map((e) => e.advantages));
  episodes.forEach((e, i) => (e.advantages = whitened[i]));
  return rewardRows.map((r) => r.nonScore);
}

/** Step 4: num_ppo_epochs passes over the episodes in num_mini_batches shuffled mini-batches, one update each. */
async function ppoUpdates(
  trainer: Trainer,
  s: PpoSettings,
  episodes: Episode[],
  rng: Rng,
  updatesBefore: number,
  padId: number,
) {
  const stats: Record<string, number>[] = [];
  for (let epoch = 0; epoch < s.num_ppo_epochs; epoch++) {
    const order = rng.shuffle([...episodes.keys()]);
    const size = Math.ceil(order.length / s.num_mini_batches);
    for (let k = 0; k < s.num_mini_batches; k++) {
      const mb = order.slice(k * size, (k + 1) * size).map((i) => episodes[i]);
      if (!mb.length) continue;
      const feeds = microBatches(mb, s.gradient_accumulation_steps).map((micro) => updateFeeds(micro, padId));
      stats.push(await trainer.update(feeds, updatesBefore + stats.length + 1));
    }
  }
  return stats;
}

/** The first responses of an iteration as a samples table. */
function sampleRows(episodes: Episode[], batch: Prompt[], tokenizer: Tokenizer): SampleRow[] {
  return episodes.slice(0, 8).map((e, i) => ({
    prompt: batch[i].text,
    response: responseText(tokenizer, e.response),
    score: e.score,
    kl: sumOf(e.kl),
  }));
}

function loadRewardModel(s: PpoSettings, exp: Experiment): Promise<Scorer> {
  if (!s.reward_model)
    throw new Error(
      'the "ppo" section names no reward_model to score responses with; train one with "rlhf rm" and set ppo.reward_model to its model directory',
    );
  return Scorer.load(s.reward_model, { provider: exp.runtime.provider, threads: exp.runtime.threads });
}

const sumOf = (xs: Float32Array) => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);

/** TRL's iteration metrics: per-sequence sums averaged over the batch, update statistics averaged over updates. */
function iterationMetrics(
  episodes: Episode[],
  nonScore: Float32Array[],
  stats: Record<string, number>[],
): Record<string, number> {
  const ratios = stats.map((m) => m.ratio);
  const ratioMean = mean(ratios);
  const scores = mean(episodes.map((e) => e.score));
  const nonScoreReward = mean(nonScore.map(sumOf));
  return {
    'objective/kl': mean(episodes.map((e) => sumOf(e.kl))),
    'objective/entropy': mean(episodes.map((e) => -sumOf(e.logprobs))),
    'objective/non_score_reward': nonScoreReward,
    'objective/rlhf_reward': scores + nonScoreReward,
    'objective/scores': scores,
    'policy/approxkl_avg': mean(stats.map((m) => m.approxkl)),
    'policy/clipfrac_avg': mean(stats.map((m) => m.pg_clipfrac)),
    'loss/policy_avg': mean(stats.map((m) => m.pg_loss)),
    'loss/value_avg': mean(stats.map((m) => m.vf_loss)),
    'val/clipfrac_avg': mean(stats.map((m) => m.vf_clipfrac)),
    'policy/entropy_avg': mean(stats.map((m) => m.entropy)),
    'val/ratio': ratioMean,
    'val/ratio_var': mean(ratios.map((r) => (r - ratioMean) ** 2)),
    'val/num_eos_tokens': episodes.filter((e) => e.finished).length,
  };
}

/**
 * Stage 3: PPO against a reward, with a per-token KL penalty to the frozen SFT reference, as TRL's
 * PPOTrainer does it. Each iteration:
 *   1. rollout: the policy samples responses to a batch of prompts (KV-cache generator);
 *   2. one forward pass gives logprobs (policy), ref_logprobs (reference) and values (value model);
 *      the reward scores each prompt + response;
 *   3. rewards = -kl_coef · kl per token + score on the last token; GAE gives advantages/returns;
 *   4. num_ppo_epochs × num_mini_batches updates of policy and value model on
 *      pg_loss + vf_coef · vf_loss (one AdamW over both).
 * The policy and value model train in one State under the prefixes "policy." and "value.", the
 * reference under "ref.".
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { maskedMean, tokenLogprobs } from '../engine/nn';
import { toOnnx } from '../engine/onnx';
import { adamw } from '../engine/optim';
import { Program, Runtime, hostTensor } from '../engine/runtime';
import { State, TrainStep, buildTrainGraph } from '../engine/step';
import { input } from '../engine/tensor';
import { BatchSampler } from '../data/batch';
import { readJsonl, expectNonEmptyString, assertNoDataErrors } from '../data/jsonl';
import { Params } from '../model/architecture';
import { CheckpointContents, saveCheckpoint, saveMultiModelCheckpoint } from '../model/checkpoint';
import { ModelConfig } from '../model/config';
import { lmHead, paramInputs, scoreHead, sequenceInputs, tokenizerFor, transformer } from '../model/decoder';
import { attentionBias, positionIds } from '../model/masks';
import { withScoreHead } from '../model/reward';
import { Tokenizer } from '../model/tokenizer';
import { CHECKPOINT_MODELS, EmitEvent, SampleRow } from '../protocol/runner';
import { Rng } from '../util/rng';
import { adaptKlCoef, gae, klEstimate, tokenRewards, whiten } from './advantages';
import { Experiment, PpoSettings } from './config';
import { Generator } from './generate';
import { MetricsLog, appendSamples } from './metrics-log';
import { checkBatchFits, longest } from './memory';
import { DivergenceGuard, LossRise } from './divergence';
import { LoadedModel, loadModel, modelContents, putOptimizerState, putTensors } from './model-state';
import { entropy, policyLoss, valueLoss } from './ppo-losses';
import { learningRate } from './schedule';
import { Scorer } from './scorer';

/** The models of a checkpoint-N/ folder: the policy (what `generate` reads) and the value model. */
const [POLICY, VALUE] = CHECKPOINT_MODELS.ppo;

/** Scores responses (token ids) to prompts (token ids): one number per pair. */
export type RewardFn = (prompts: number[][], responses: number[][]) => Promise<number[]>;

/** One sampled response and everything PPO computes about it, per response token. */
interface Episode {
  prompt: number[];
  response: number[];
  finished: boolean;
  score: number;
  logprobs: Float32Array;
  refLogprobs: Float32Array;
  values: Float32Array;
  kl: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
}

// ---------------------------------------------------------------- graphs

/** Per-position log-probs under policy and reference (temperature-scaled), and the value model's values. */
function rolloutGraph(cfg: ModelConfig, temperature: number) {
  const inputs = sequenceInputs();
  const targets = input('targets', 'int32', ['B', 'T']);
  const hidden = (p: Params) => transformer(p, cfg, inputs).hidden;
  const logprobs = (p: Params) => tokenLogprobs(lmHead(p, cfg, hidden(p)).div(temperature), targets);
  const value = paramInputs(cfg, 'score', 'value.');
  return toOnnx({ logprobs: logprobs(paramInputs(cfg, 'lm', 'policy.')), ref_logprobs: logprobs(paramInputs(cfg, 'lm', 'ref.')), values: scoreHead(value, hidden(value)) }, 'ppo_rollout');
}

/** The PPO update: pg_loss + vf_coef · vf_loss, with TRL's statistics. */
function updateGraph(cfg: ModelConfig, s: PpoSettings) {
  const inputs = sequenceInputs();
  const dense = (name: string) => input(name, 'float32', ['B', 'T']);
  const targets = input('targets', 'int32', ['B', 'T']);
  const mask = dense('response_mask');
  const policy = paramInputs(cfg, 'lm', 'policy.');
  const value = paramInputs(cfg, 'score', 'value.');
  const logits = lmHead(policy, cfg, transformer(policy, cfg, inputs).hidden).div(s.temperature);
  const values = scoreHead(value, transformer(value, cfg, inputs).hidden);
  const pg = policyLoss(tokenLogprobs(logits, targets), dense('old_logprobs'), dense('advantages'), mask, s.cliprange);
  const vf = valueLoss(values, dense('old_values'), dense('returns'), mask, s.cliprange_value);
  return buildTrainGraph({
    accumulate: s.gradient_accumulation_steps > 1,
    loss: pg.loss.add(vf.loss.mul(s.vf_coef)),
    params: [...Object.values(policy), ...Object.values(value)],
    optimizer: adamw({ weightDecay: s.weight_decay }),
    maxGradNorm: s.max_grad_norm,
    metrics: { pg_loss: pg.loss, vf_loss: vf.loss, pg_clipfrac: pg.clipfrac, vf_clipfrac: vf.clipfrac, approxkl: pg.approxkl, ratio: pg.ratio, entropy: maskedMean(entropy(logits), mask) },
  });
}

// ---------------------------------------------------------------- packing episodes into batches

/**
 * Lays episodes out as rows [left padding, prompt, response, right padding] of width W; the graph
 * reads positions 0..W-2 and predicts 1..W-1, so response token j of a row sits at target
 * position P - 1 + j, with P the (shared) prompt width.
 */
function layout(episodes: Pick<Episode, 'prompt' | 'response'>[], padId: number) {
  const b = episodes.length;
  const p = Math.max(...episodes.map((e) => e.prompt.length));
  const t = p + Math.max(...episodes.map((e) => e.response.length)) - 1;
  const tokens = new Int32Array(b * t).fill(padId), targets = new Int32Array(b * t).fill(padId);
  const keyMask = new Float32Array(b * t), responseMask = new Float32Array(b * t);
  episodes.forEach((e, row) => {
    const seq = [...Array(p - e.prompt.length).fill(padId), ...e.prompt, ...e.response];
    for (let i = 0; i < seq.length - 1; i++) {
      tokens[row * t + i] = seq[i];
      targets[row * t + i] = seq[i + 1];
      keyMask[row * t + i] = i >= p - e.prompt.length ? 1 : 0;
      responseMask[row * t + i] = i >= p - 1 ? 1 : 0;
    }
  });
  const dims = [b, t];
  const feeds: Record<string, ort.Tensor> = {
    tokens: hostTensor('int32', tokens, dims),
    positions: hostTensor('int32', positionIds(keyMask, b, t, t), dims),
    attn_bias: hostTensor('float32', attentionBias(keyMask, b, t, t), [b, 1, t, t]),
    targets: hostTensor('int32', targets, dims),
    response_mask: hostTensor('float32', responseMask, dims),
  };
  /** Row `row`'s response span of a [B, T] output. */
  const read = (dense: Float32Array, row: number) => dense.slice(row * t + p - 1, row * t + p - 1 + episodes[row].response.length);
  /** Per-episode arrays scattered into a [B, T] input, zero elsewhere. */
  const place = (rows: Float32Array[]) => {
    const out = new Float32Array(b * t);
    rows.forEach((r, row) => out.set(r, row * t + p - 1));
    return hostTensor('float32', out, dims);
  };
  return { feeds, read, place };
}

/** The update graph's inputs for some episodes. */
function updateFeeds(episodes: Episode[], padId: number): Record<string, ort.Tensor> {
  const l = layout(episodes, padId);
  const dense = (pick: (e: Episode) => Float32Array) => l.place(episodes.map(pick));
  return { ...l.feeds, old_logprobs: dense((e) => e.logprobs), old_values: dense((e) => e.values), advantages: dense((e) => e.advantages), returns: dense((e) => e.returns) };
}

/** A mini-batch cut into (at most) k micro-batches for gradient accumulation. */
function microBatches<T>(items: T[], k: number): T[][] {
  const size = Math.ceil(items.length / k);
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

function withState(program: Program, state: State, feeds: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
  const all = { ...feeds };
  for (const i of program.model.inputs) if (!(i.name in all)) all[i.name] = state.get(i.name);
  return all;
}

// ---------------------------------------------------------------- the run

export interface PpoRun {
  experiment: Experiment;
  outputDir: string;
  /** A checkpoint-N directory of an earlier run of this experiment (with policy/ and value/). The finished run's models are model/ (policy) and value/. */
  resumeFrom?: string;
  /** The reward; by default the reward model named in the config (`ppo.reward_model`). */
  reward?: RewardFn;
  emit: EmitEvent;
  signal?: AbortSignal;
}

export function readPrompts(file: string, tokenizer: Tokenizer): { text: string; ids: number[] }[] {
  const { records, errors } = readJsonl(file, (r) => expectNonEmptyString(r.prompt, 'prompt'));
  assertNoDataErrors(errors);
  if (!records.length) throw new Error(`${file}: no prompts found (expected {"prompt": "..."} per line)`);
  return records.map((r) => ({ text: r.value, ids: tokenizer.encode(r.value) }));
}

export async function runPpo(run: PpoRun): Promise<{ modelDir: string; stopped: boolean }> {
  const { experiment: exp, emit, outputDir } = run;
  const s = exp.ppo;
  if (!s) throw new Error('the experiment config has no "ppo" section');
  const sft = loadModel(s.sft_model ?? exp.model, exp.seed, exp.model_size);
  const cfg = sft.config;
  const tokenizer = tokenizerFor(cfg);
  const prompts = readPrompts(s.prompts, tokenizer);
  const episodeLength = Math.min(cfg.nPositions, longest(prompts.map((p) => p.ids.length)) + s.response_length);
  checkBatchFits('ppo.per_device_train_batch_size', cfg, s.per_device_train_batch_size, episodeLength);
  const resumed = run.resumeFrom ? loadResumed(run.resumeFrom, exp.seed) : undefined;
  const valueInit = resumed?.value ?? (s.reward_model ? loadModel(s.reward_model, exp.seed) : undefined);
  if (valueInit && (valueInit.config.nEmbd !== cfg.nEmbd || valueInit.config.nLayer !== cfg.nLayer)) {
    throw new Error(`the value model (${valueInit.config.nLayer} layers, d=${valueInit.config.nEmbd}) must have the policy's size (${cfg.nLayer} layers, d=${cfg.nEmbd})`);
  }

  const runtime = await Runtime.create({ provider: exp.runtime.provider as never, threads: exp.runtime.threads, log: (m) => emit({ type: 'log', level: 'info', message: m }) });
  const state = new State(runtime);
  putTensors(state, sft.params, 'ref.');
  putTensors(state, resumed?.policy.params ?? sft.params, 'policy.');
  putTensors(state, withScoreHead(valueInit?.params ?? sft.params, cfg, new Rng(exp.seed)), 'value.');
  if (resumed?.policy.checkpoint?.optimizerState) putOptimizerState(state, resumed.policy.checkpoint.optimizerState, 'policy.');
  if (resumed?.value.checkpoint?.optimizerState) putOptimizerState(state, resumed.value.checkpoint.optimizerState, 'value.');
  const trainer = resumed?.policy.checkpoint?.trainerState ?? {};
  let iteration = Number(trainer.step ?? 0);
  let klCoef = Number(trainer.kl_coef ?? s.kl_coef);

  const scorer = run.reward ? undefined : await loadRewardModel(s, exp);
  const reward = run.reward ?? ((p: number[][], r: number[][]) => scorer!.scoreTokens(p, r));
  const generator = await Generator.create(runtime, cfg, state, tokenizer.padId, 'policy.');
  const rollout = await runtime.load(rolloutGraph(cfg, s.temperature));
  const step = await TrainStep.create(updateGraph(cfg, s), state);
  const iterations = Math.ceil(s.total_episodes / s.per_device_train_batch_size);
  const updatesPerIteration = s.num_ppo_epochs * s.num_mini_batches;
  const schedule = { type: s.lr_scheduler_type, peak: s.learning_rate, warmupSteps: s.warmup_steps, totalSteps: iterations * updatesPerIteration, minRatio: s.min_lr_ratio };
  const sampler = new BatchSampler(prompts, s.per_device_train_batch_size, exp.seed);
  fs.mkdirSync(outputDir, { recursive: true });
  const log = new MetricsLog(path.join(outputDir, 'metrics.jsonl'), iteration);
  emit({ type: 'log', level: 'info', message: `PPO on ${prompts.length} prompts: ${iterations} iterations of ${s.per_device_train_batch_size} episodes, model ${cfg.nLayer} layers, d=${cfg.nEmbd}` });

  const guard = new DivergenceGuard('PPO', run.resumeFrom);
  const rise = new LossRise('loss/value_avg');
  const saves = new PpoSaves(state, cfg, emit, guard);
  const at = (): SavePoint => {
    const episode = iteration * s.per_device_train_batch_size;
    return { iteration, optimizerStep: iteration * updatesPerIteration, episode, klCoef, seed: exp.seed };
  };

  while (iteration < iterations && !run.signal?.aborted) {
    iteration++;
    const rng = new Rng(exp.seed * 7919 + iteration); // a function of (seed, iteration): resume samples alike
    const batch = sampler.batch(iteration - 1);

    // 1. Rollout.
    let t0 = Date.now();
    const generations = await generator.generate(batch.map((p) => p.ids), { maxNewTokens: s.response_length, temperature: s.temperature, topK: 0, topP: 1 }, tokenizer.eosId, rng);
    const rolloutSeconds = (Date.now() - t0) / 1000;

    // 2. Log-probs, values and scores.
    t0 = Date.now();
    const shape = generations.map((g, i) => ({ prompt: batch[i].ids, response: g.tokens }));
    const lay = layout(shape, tokenizer.padId);
    const out = await rollout.run(withState(rollout, state, lay.feeds));
    const scores = await reward(shape.map((e) => e.prompt), shape.map((e) => e.response));
    const bad = scores.find((x) => !Number.isFinite(x));
    if (bad !== undefined) throw new Error(`PPO stopped at iteration ${iteration}: the reward gave a non-finite score (${bad}); ${guard.leftover()}`);
    const episodes: Episode[] = shape.map((e, i) => {
      const logprobs = lay.read(out.logprobs.data as Float32Array, i);
      const refLogprobs = lay.read(out.ref_logprobs.data as Float32Array, i);
      const penalty = !generations[i].finished && s.missing_eos_penalty !== undefined ? s.missing_eos_penalty : 0;
      return { ...e, finished: generations[i].finished, score: scores[i] - penalty, logprobs, refLogprobs, values: lay.read(out.values.data as Float32Array, i),
        kl: klEstimate(logprobs, refLogprobs, s.kl_estimator), advantages: new Float32Array(0), returns: new Float32Array(0) };
    });
    const scoreSeconds = (Date.now() - t0) / 1000;

    // 3. Rewards and advantages.
    const rewardRows = episodes.map((e) => tokenRewards(e.kl, klCoef, e.score));
    const rewards = s.whiten_rewards ? whiten(rewardRows.map((r) => r.rewards), false) : rewardRows.map((r) => r.rewards);
    episodes.forEach((e, i) => Object.assign(e, gae(rewards[i], e.values, s.gamma, s.lam)));
    const whitened = whiten(episodes.map((e) => e.advantages));
    episodes.forEach((e, i) => (e.advantages = whitened[i]));

    // 4. Updates.
    t0 = Date.now();
    const stats: Record<string, number>[] = [];
    for (let epoch = 0; epoch < s.num_ppo_epochs; epoch++) {
      const order = rng.shuffle([...episodes.keys()]);
      const size = Math.ceil(order.length / s.num_mini_batches);
      for (let k = 0; k < s.num_mini_batches; k++) {
        const mb = order.slice(k * size, (k + 1) * size).map((i) => episodes[i]);
        if (!mb.length) continue;
        const updateStep = (iteration - 1) * updatesPerIteration + stats.length + 1;
        const m = await step.run(microBatches(mb, s.gradient_accumulation_steps).map((micro) => updateFeeds(micro, tokenizer.padId)), learningRate(schedule, updateStep), updateStep);
        guard.checkUpdate(`iteration ${iteration}`, m);
        stats.push(m);
      }
    }
    const updateSeconds = (Date.now() - t0) / 1000;

    const values = iterationMetrics(episodes, rewardRows.map((r) => r.nonScore), stats);
    const responseTokens = episodes.reduce((a, e) => a + e.response.length, 0);
    Object.assign(values, {
      lr: learningRate(schedule, iteration * updatesPerIteration),
      episode: iteration * s.per_device_train_batch_size,
      kl_coef: klCoef,
      'time/rollout': rolloutSeconds,
      'time/score': scoreSeconds,
      'time/update': updateSeconds,
      tokens_per_second: responseTokens / rolloutSeconds,
    });
    if (s.adaptive_kl) klCoef = adaptKlCoef(klCoef, values['objective/kl'], s.adaptive_kl.target, s.adaptive_kl.horizon, episodes.length);
    emit({ type: 'progress', stage: 'ppo', step: iteration, total: iterations });
    if (iteration % s.logging_steps === 0 || iteration === iterations) {
      const time = log.append('ppo', iteration, values);
      emit({ type: 'metrics', stage: 'ppo', step: iteration, time, values });
      const warning = rise.add(`iteration ${iteration}`, values['loss/value_avg']);
      if (warning) emit({ type: 'log', level: 'warn', message: warning });
    }
    if (iteration % s.sample_steps === 0 || iteration === 1 || iteration === iterations) {
      const rows: SampleRow[] = episodes.slice(0, 8).map((e, i) => ({ prompt: batch[i].text, response: tokenizer.decode(e.finished ? e.response.slice(0, -1) : e.response), score: e.score, kl: sumOf(e.kl) }));
      appendSamples(outputDir, iteration, rows);
      emit({ type: 'samples', stage: 'ppo', step: iteration, rows });
    }
    if (iteration % s.save_steps === 0 && iteration < iterations) await saves.checkpoint(path.join(outputDir, `checkpoint-${iteration}`), at());
  }

  const stopped = iteration < iterations;
  const checkpointDir = path.join(outputDir, `checkpoint-${iteration}`);
  const modelDir = stopped ? path.join(checkpointDir, POLICY) : path.join(outputDir, 'model');
  if (stopped) await saves.checkpoint(checkpointDir, at());
  else await saves.final(outputDir, at());
  emit({ type: 'done', stage: 'ppo', step: iteration, outputDir, stopped, ...(rise.warning && { warning: rise.warning }) });
  await generator.release();
  await scorer?.release();
  await rollout.release();
  await step.release();
  await state.release();
  return { modelDir, stopped };
}

/** The policy and value model of a checkpoint-N/ folder to resume from. */
function loadResumed(checkpoint: string, seed: number): { policy: LoadedModel; value: LoadedModel } {
  const model = (name: string) => loadModel(path.join(checkpoint, name), seed);
  return { policy: model(POLICY), value: model(VALUE) };
}

/** Where a save is in the run: what the checkpoint's trainer_state.json records. */
interface SavePoint {
  iteration: number;
  optimizerStep: number;
  episode: number;
  klCoef: number;
  seed: number;
}

/** PPO's saves of its two models, each with its AdamW slots; weights that are not finite stop the run. */
class PpoSaves {
  constructor(
    private readonly state: State,
    private readonly cfg: ModelConfig,
    private readonly emit: EmitEvent,
    private readonly guard: DivergenceGuard,
  ) {}

  /** Both models as one checkpoint to resume from, written whole or not at all. */
  async checkpoint(dir: string, at: SavePoint): Promise<void> {
    await this.guard.save(`iteration ${at.iteration}`, dir, async () => saveMultiModelCheckpoint(dir, await this.models(at)));
    this.emit({ type: 'checkpoint', stage: 'ppo', step: at.iteration, path: dir });
  }

  /** The finished run's value/ and then model/ (the policy): a model/ folder means both are there. */
  async final(outputDir: string, at: SavePoint): Promise<void> {
    await this.guard.guard(`iteration ${at.iteration}`, async () => {
      const saved = await this.models(at);
      for (const [name, dir] of [[VALUE, 'value'], [POLICY, 'model']]) saveCheckpoint(path.join(outputDir, dir), saved[name]);
    });
    this.emit({ type: 'checkpoint', stage: 'ppo', step: at.iteration, path: path.join(outputDir, 'model') });
  }

  /** The policy (an LM checkpoint, what `generate` reads) and the value model. */
  private async models(at: SavePoint): Promise<Record<string, CheckpointContents>> {
    const policyState = { stage: 'ppo', step: at.iteration, episode: at.episode, kl_coef: at.klCoef, seed: at.seed };
    return {
      [POLICY]: await modelContents(this.state, this.cfg, 'lm', policyState, at.optimizerStep, 'policy.'),
      [VALUE]: await modelContents(this.state, this.cfg, 'score', { stage: 'ppo', step: at.iteration }, at.optimizerStep, 'value.'),
    };
  }
}

function loadRewardModel(s: PpoSettings, exp: Experiment): Promise<Scorer> {
  if (!s.reward_model) throw new Error('the "ppo" section names no reward_model to score responses with; train one with "rlhf rm" and set ppo.reward_model to its model directory');
  return Scorer.load(s.reward_model, { provider: exp.runtime.provider, threads: exp.runtime.threads });
}

const sumOf = (xs: Float32Array) => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);

/** TRL's iteration metrics: per-sequence sums averaged over the batch, update statistics averaged over updates. */
function iterationMetrics(episodes: Episode[], nonScore: Float32Array[], stats: Record<string, number>[]): Record<string, number> {
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

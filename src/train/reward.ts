/**
 * Stage 2: the reward model. The SFT model's transformer with a scalar head learns from preference
 * pairs with the Bradley–Terry loss -log σ(r_chosen - r_rejected - margin), as TRL's
 * RewardTrainer, trained by the shared loop (./trainer.ts). A pair's chosen and rejected
 * sequences (prompt + response + EOS) go through the model in one batch of 2P rows.
 * After training, the rewards of a reference set of texts give the mean and std that scoring
 * normalises by (./scorer.ts).
 */
import { logSigmoid, maskedMean } from '../engine/nn';
import { cast, greater, max, mean, neg, reshape, slice, sub } from '../engine/ops';
import { hostTensor } from '../engine/runtime';
import { Tensor, input } from '../engine/tensor';
import { ReadOptions } from '../data/formats/read';
import { loadPreferencePairs } from '../data/formats/stage-data';
import { PairOptions, PreferencePair } from '../data/preferences';
import { loadSft, splitTrainEval } from '../data/sft';
import { ModelConfig } from '../model/config';
import { rewardInputs, rewardParamInputs, rewards, withScoreHead } from '../model/reward';
import { ChatFormat } from '../model/chat';
import { Tokenizer } from '../model/tokenizer';
import { TextOrMessages } from '../data/preference-record';
import { EmitEvent, RunEvent } from '../protocol/runner';
import { REWARD_WARNINGS_KEY } from '../model/reward-warnings';
import { Rng } from '../util/rng';
import { Experiment } from '../experiment/config';
import { checkBatchFits, longest } from './memory';
import { LoraAdapter, trainableInputs } from '../model/lora';
import { trainedModel } from './adapters';
import { LoadedModel, loadModel } from './model-state';
import {
  NORMALIZATION_KEY,
  Scorer,
  measureNormalization,
  rewardFeeds,
  rewardSequence,
  withNormalization,
} from './scorer';
import { Trainer } from './trainer';
import { atChance, fewPairs, missingLabels } from './reward-checks';
import { Batch, CheckpointExtras, StageGraph, describeModel, sampledData, oneModel } from './stage';

/** A preference pair: text, or conversation messages rendered by the model's chat format. */
export interface RewardPair {
  prompt: TextOrMessages;
  chosen: TextOrMessages;
  rejected: TextOrMessages;
  /** How much more chosen must score than rejected (TRL's "margin" column); 0 when absent. */
  margin?: number;
  /** Neither response is better: trained towards equal rewards. */
  tie?: boolean;
}

/** A pair as token ids, with its margin and target P(chosen wins): 1, or 0.5 for a tie. */
interface TokenPair {
  chosen: number[];
  rejected: number[];
  margin: number;
  target: number;
}

/** At most this many reference texts are scored for the normalisation. */
const NORMALIZATION_TEXTS = 1000;

/**
 * The Bradley–Terry loss of rewards [2, P] (row 0 chosen, row 1 rejected) with margin and target
 * [P]: mean of -[y log σ(Δ) + (1 - y) log σ(-Δ)], Δ = r_c - r_r - margin, plus
 * centerCoef · mean((r_c + r_r)²) (TRL's center_rewards_coefficient). With TRL's metrics:
 * accuracy (r_c > r_r, over pairs that are not ties), margin (mean r_c - r_r), and the rewards'
 * mean, min and max.
 */
export function bradleyTerry(
  r: Tensor,
  margin: Tensor,
  target: Tensor,
  centerCoef = 0,
): { loss: Tensor; metrics: Record<string, Tensor> } {
  const pairs = [r.shape[1]];
  const chosen = reshape(slice(r, 0, 0, 1), pairs),
    rejected = reshape(slice(r, 0, 1, 2), pairs); // [P]
  const delta = chosen.sub(rejected).sub(margin);
  let loss = mean(neg(target.mul(logSigmoid(delta)).add(sub(1, target).mul(logSigmoid(neg(delta))))));
  const total = chosen.add(rejected);
  if (centerCoef) loss = loss.add(mean(total.mul(total)).mul(centerCoef));
  const accuracy = maskedMean(cast(greater(chosen, rejected), r.dtype), greater(target, 0.5));
  return {
    loss,
    metrics: {
      accuracy,
      margin: mean(chosen.sub(rejected)),
      mean_reward: mean(r),
      min_reward: neg(max(neg(r))),
      max_reward: max(r),
    },
  };
}

/** The reward model's training graph on batches of P pairs: 2P rows, chosen ones first. */
export function rewardLossGraph(cfg: ModelConfig, centerCoef?: number, adapter?: LoraAdapter): StageGraph {
  const p = rewardParamInputs(cfg, false, '', adapter && { adapter });
  const r = rewards(p, cfg, rewardInputs([2, 'P'])); // [2, P]
  const bt = bradleyTerry(
    r,
    input('pair_margin', 'float32', ['P']),
    input('pair_target', 'float32', ['P']),
    centerCoef,
  );
  return { loss: bt.loss, params: trainableInputs(p, adapter), metrics: bt.metrics };
}

/** The graph inputs of a batch of pairs, weighted by its pairs. */
function pairBatch(pairs: TokenPair[], padId: number): Batch {
  const p = pairs.length;
  const sequences = [...pairs.map((x) => x.chosen), ...pairs.map((x) => x.rejected)];
  return {
    feeds: {
      ...rewardFeeds(sequences, padId, [2, p]),
      pair_margin: hostTensor(
        'float32',
        Float32Array.from(pairs, (x) => x.margin),
        [p],
      ),
      pair_target: hostTensor(
        'float32',
        Float32Array.from(pairs, (x) => x.target),
        [p],
      ),
    },
    weight: p,
    tokens: sequences.reduce((a, s) => a + s.length, 0),
  };
}

/** Pairs as token ids; pairs with a sequence longer than maxLength are left out (as TRL does). */
function tokenizePairs(
  pairs: RewardPair[],
  tokenizer: Tokenizer,
  chat: ChatFormat,
  maxLength: number,
): { pairs: TokenPair[]; tooLong: number } {
  const out: TokenPair[] = [];
  for (const x of pairs) {
    const chosen = rewardSequence(tokenizer, x.prompt, x.chosen, chat),
      rejected = rewardSequence(tokenizer, x.prompt, x.rejected, chat);
    if (chosen.length <= maxLength && rejected.length <= maxLength)
      out.push({ chosen, rejected, margin: x.margin ?? 0, target: x.tie ? 0.5 : 1 });
  }
  return { pairs: out, tooLong: pairs.length - out.length };
}

/**
 * The model to train: a checkpoint to resume or a reward model as it is, else a backbone (SFT
 * checkpoint or preset) with a fresh score head; with rm.peft, an adapter on it (./adapters.ts).
 */
function rewardModel(spec: string, exp: Experiment, outputDir: string): LoadedModel {
  const m = loadModel(spec, exp.seed, exp.model_size);
  // A normalisation belongs to the finished model it was measured on, not to what trains from it.
  const scored: LoadedModel = {
    ...m,
    head: 'score',
    config: withNormalization(m.config),
    params: withScoreHead(m.params, m.config, new Rng(exp.seed)),
  };
  return trainedModel(scored, exp.rm?.peft, { seed: exp.seed, outputDir, where: 'rm.peft' });
}

export interface RmRun {
  experiment: Experiment;
  outputDir: string;
  /** A checkpoint directory of an earlier run of this experiment to continue from. */
  resumeFrom?: string;
  /** The preference pairs; read from the config's rm.data when absent. */
  pairs?: RewardPair[];
  emit: EmitEvent;
  signal?: AbortSignal;
}

/**
 * Reads a stage's preference data (any format src/data/formats reads: the labeling store, TRL's
 * preference records, HH-RLHF transcripts…); bad records stop the run, naming file and line, and
 * comparisons without a winner are counted in the log.
 */
export async function readTrainingPairs(
  source: string,
  options: ReadOptions & PairOptions,
  emit: EmitEvent,
): Promise<PreferencePair[]> {
  const { pairs, skipped, summary } = await loadPreferencePairs(source, options);
  emit({ type: 'log', level: 'info', message: summary });
  if (skipped)
    emit({
      type: 'log',
      level: 'info',
      message: `${source}: ${skipped} comparison${skipped === 1 ? '' : 's'} without a winner left out (labeled ${options.includeTies ? 'skip' : 'tie, both_bad or skip'})`,
    });
  return pairs;
}

/**
 * The trained model's rewards of the reference texts give the mean and std scores are normalised
 * by, saved in its config and trainer state, with the model's warnings.
 */
async function normalizedByReference(
  trainer: Trainer,
  model: LoadedModel,
  reference: { sequences: number[][]; source: string },
  emit: EmitEvent,
  warnings: string[],
): Promise<CheckpointExtras> {
  const { tokenizer, adapter } = model;
  const scorer = await Scorer.create(trainer.runtime, model.config, trainer.state, { tokenizer, adapter });
  const normalization = measureNormalization(await scorer.scoreIds(reference.sequences));
  await scorer.release();
  const { mean, std } = normalization;
  const message = `rewards of ${reference.sequences.length} ${reference.source}: mean ${mean.toFixed(4)}, std ${std.toFixed(4)}; scores are normalised by them`;
  emit({ type: 'log', level: 'info', message });
  return {
    trainerState: { [NORMALIZATION_KEY]: normalization, ...(warnings.length && { [REWARD_WARNINGS_KEY]: warnings }) },
    config: withNormalization(model.config, normalization),
  };
}

/** The run's pairs, else those of rm.data, saying what to do next when nothing is labeled yet. */
async function rewardPairs(run: RmRun, chat: ChatFormat): Promise<RewardPair[]> {
  const s = run.experiment.rm!;
  if (run.pairs) return run.pairs;
  const missing = missingLabels(run.experiment, s.data);
  if (missing) throw new Error(missing);
  const options = { includeTies: s.include_ties, columns: s.columns, templated: chat.templated };
  return readTrainingPairs(s.data, options, run.emit);
}

export async function runRm(run: RmRun): Promise<{ modelDir: string; stopped: boolean }> {
  const { experiment: exp, emit, outputDir } = run;
  const s = exp.rm;
  if (!s) throw new Error('the experiment config has no "rm" section');
  const model = rewardModel(run.resumeFrom ?? s.model ?? exp.model, exp, outputDir);
  const { config: cfg, tokenizer } = model;
  const maxLength = Math.min(s.max_length ?? cfg.nPositions, cfg.nPositions);

  const chat = tokenizer.chat(exp.chat_template_kwargs);
  const data = tokenizePairs(await rewardPairs(run, chat), tokenizer, chat, maxLength);
  if (data.tooLong)
    emit({
      type: 'log',
      level: 'warn',
      message: `${data.tooLong} pairs were longer than ${maxLength} tokens and were left out`,
    });
  if (!data.pairs.length) throw new Error(`${s.data}: no preference pairs to train on`);
  const sequences = data.pairs.flatMap((x) => [x.chosen.length, x.rejected.length]);
  checkBatchFits('rm.per_device_train_batch_size', cfg, 2 * s.per_device_train_batch_size, longest(sequences), {
    frozen: !!model.adapter,
  });
  const { trainSet: train, evalSet: evaluation } = splitTrainEval(data.pairs, s.eval_fraction, new Rng(exp.seed));
  const reference = await normalizationTexts(exp, train, tokenizer, chat, maxLength);
  emit({
    type: 'log',
    level: 'info',
    message: `reward model on ${train.length} pairs (${evaluation.length} held out), model ${describeModel(cfg)}`,
  });
  const decided = data.pairs.filter((x) => x.target === 1).length;
  const few = fewPairs(decided, evaluation.length);
  if (few) emit({ type: 'log', level: 'warn', message: few });
  const watched = watchAccuracy(emit);

  const trainer = await Trainer.create({
    stage: 'rm',
    title: 'reward model',
    experiment: exp,
    settings: s,
    totalSteps: s.max_steps,
    ...oneModel(model, run.resumeFrom),
    graph: rewardLossGraph(cfg, s.center_rewards_coefficient, model.adapter),
    outputDir,
    emit: watched.emit,
  });
  const toBatch = (pairs: TokenPair[]) => pairBatch(pairs, tokenizer.padId);
  const batches = sampledData(train, evaluation, s.per_device_train_batch_size, exp.seed, toBatch);
  const { stopped } = await trainer.train(batches, run.signal);

  const weak = stopped ? undefined : atChance(evaluation.length ? watched.accuracy() : undefined);
  if (weak) emit({ type: 'log', level: 'warn', message: weak });
  const warnings = stopped ? [] : [few, weak].filter((w): w is string => w !== undefined);
  const final = stopped ? {} : await normalizedByReference(trainer, model, reference, emit, warnings);
  const modelDir = await trainer.saveFinal(stopped, final);
  await trainer.close(stopped, warnings);
  return { modelDir, stopped };
}

/** `emit`, noting the latest held-out accuracy on the way. */
function watchAccuracy(emit: EmitEvent): { emit: EmitEvent; accuracy(): number | undefined } {
  let latest: number | undefined;
  return {
    emit: (e: RunEvent) => {
      const accuracy = e.type === 'metrics' ? e.values.eval_accuracy : undefined;
      if (typeof accuracy === 'number') latest = accuracy;
      emit(e);
    },
    accuracy: () => latest,
  };
}

/**
 * The texts whose rewards set the normalisation: the experiment's SFT data (prompt + completion)
 * when it has an "sft" section, else the training pairs' responses; at most NORMALIZATION_TEXTS,
 * picked by the seed.
 */
async function normalizationTexts(
  exp: Experiment,
  train: TokenPair[],
  tokenizer: Tokenizer,
  chat: ChatFormat,
  maxLength: number,
): Promise<{ sequences: number[][]; source: string }> {
  const sft =
    exp.sft &&
    (await loadSft(exp.sft.data, tokenizer, maxLength - 1, chat, exp.sft.columns)).examples.map((e) => e.ids);
  const sequences = sft ?? train.flatMap((x) => [x.chosen, x.rejected]);
  return {
    sequences: new Rng(exp.seed).shuffle(sequences).slice(0, NORMALIZATION_TEXTS),
    source: sft ? 'SFT examples' : 'training responses',
  };
}

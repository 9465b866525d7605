/**
 * DPO: the policy learns from preference pairs directly, with no reward model, by the loss of
 * ./dpo-loss.ts against a frozen reference (the model it starts from), trained by the shared loop
 * (./trainer.ts) as TRL's DPOTrainer trains it. The reference's log-probs of every pair are
 * computed once before training and kept in the run folder (./dpo-reference.ts). The policy trains
 * in the State without a prefix (its checkpoints are plain model folders, as SFT's, or with
 * dpo.peft adapter folders), the reference is held frozen under "ref." (./policy-models.ts).
 */
import { EmitEvent } from '../protocol/runner';
import { ModelConfig } from '../model/config';
import { Tokenizer, sequenceIds } from '../model/tokenizer';
import { TokenExample } from '../data/batch';
import { splitTrainEval } from '../data/sft';
import { PreferencePair } from '../data/preferences';
import { Rng } from '../util/rng';
import { DpoSettings, Experiment } from '../experiment/config';
import { DpoData, DpoLimits, DpoPair, tokenizeDpoPairs } from './dpo-data';
import { dpoLossGraph } from './dpo-loss';
import { dpoBatch } from './dpo-batch';
import { referenceLogps } from './dpo-reference';
import { Generator } from './generate';
import { checkBatchFits, longest } from './memory';
import { LoadedModel, loadModel } from './model-state';
import { readTrainingPairs } from './reward';
import { SamplePrompt, sampleAnswers } from './samples';
import { Trainer } from './trainer';
import { policyModels } from './policy-models';
import { describeModel, sampledData } from './stage';

export interface DpoRun {
  experiment: Experiment;
  outputDir: string;
  /** A checkpoint directory of an earlier run of this experiment to continue from (in the same run folder). */
  resumeFrom?: string;
  /** The preference pairs; read from the config's dpo.data when absent. */
  pairs?: PreferencePair[];
  emit: EmitEvent;
  signal?: AbortSignal;
}

/** At most this many held-out prompts are sampled before and after training when the config names none. */
const SAMPLE_PROMPTS = 4;

export async function runDpo(run: DpoRun): Promise<{ modelDir: string; stopped: boolean }> {
  const { experiment: exp, emit, outputDir } = run;
  const s = exp.dpo;
  if (!s) throw new Error('the experiment config has no "dpo" section');
  const base = s.model ?? exp.model;
  const start = loadModel(base, exp.seed, exp.model_size);
  const { places, policy, ...models } = policyModels(start, run, s, { where: 'dpo.peft', reference: true });
  const { config: cfg, tokenizer } = policy;
  const data = await readDpoPairs(run, s, policy, exp.chat_template_kwargs);
  const rows = data.flatMap((p) => [p.chosen.ids.length - 1, p.rejected.ids.length - 1]);
  checkBatchFits('dpo.per_device_train_batch_size', cfg, 2 * s.per_device_train_batch_size, longest(rows), {
    frozen: !!s.peft,
  });
  const { trainSet: train, evalSet: evaluation } = splitTrainEval(data, s.eval_fraction, new Rng(exp.seed));
  const batchTokens = mostScoredTokens(data, s.per_device_train_batch_size);
  emit({
    type: 'log',
    level: 'info',
    message: `DPO (${s.loss_type}, beta ${s.beta}) on ${train.length} pairs (${evaluation.length} held out), model ${describeModel(cfg)}`,
  });

  const trainer = await Trainer.create({
    stage: 'dpo',
    title: 'DPO',
    experiment: exp,
    settings: s,
    totalSteps: s.max_steps,
    ...models,
    graph: dpoLossGraph(cfg, s, places.policy, batchTokens),
    outputDir,
    emit,
  });
  await referenceLogps(trainer, cfg, [...train, ...evaluation], {
    identity: JSON.stringify({ model: base, seed: exp.seed, size: exp.model_size }),
    lora: places.ref,
    average: s.loss_type === 'ipo',
    batchSize: s.per_device_train_batch_size,
    batchTokens,
    padId: tokenizer.padId,
    outputDir,
    emit,
  });

  const prompts = samplePrompts(s, tokenizer, evaluation.length ? evaluation : train);
  const showSamples = async (at: number) => {
    const generator = await Generator.create(trainer.runtime, cfg, trainer.state, tokenizer.padId, '', places.policy);
    const answers = await sampleAnswers(generator, tokenizer, prompts, new Rng(exp.seed));
    await generator.release();
    trainer.samples(answers, at);
  };
  const toBatch = (batch: DpoPair[]) => dpoBatch(batch, tokenizer.padId);
  const batches = sampledData(train, evaluation, s.per_device_train_batch_size, exp.seed, toBatch);
  return trainer.trainWithSamples(batches, showSamples, run.signal);
}

/** The pairs of the run, or of the config's data file, as token rows; what was left out or cut is reported. */
async function readDpoPairs(
  run: DpoRun,
  s: DpoSettings,
  model: LoadedModel,
  chatTemplateKwargs?: Record<string, unknown>,
): Promise<DpoPair[]> {
  const limits = dpoLimits(s, model.config);
  const chat = model.tokenizer.chat(chatTemplateKwargs);
  const pairs =
    run.pairs ?? (await readTrainingPairs(s.data, { columns: s.columns, templated: chat.templated }, run.emit));
  const data = tokenizeDpoPairs(pairs, model.tokenizer, chat, limits);
  reportData(s.data, pairs.length, data, limits, run.emit);
  if (!data.pairs.length) throw new Error(`${s.data}: no preference pairs to train on`);
  return data.pairs;
}

/** How a DPO section truncates pairs for a model. */
export function dpoLimits(s: DpoSettings, cfg: ModelConfig): DpoLimits {
  return {
    maxPromptLength: s.max_prompt_length,
    maxCompletionLength: s.max_completion_length,
    maxLength: Math.min(s.max_length, cfg.nPositions + 1),
    truncationMode: s.truncation_mode,
  };
}

/** The config's sample prompts, else the first few distinct prompts of `pairs`. */
function samplePrompts(s: DpoSettings, tokenizer: Tokenizer, pairs: readonly DpoPair[]): SamplePrompt[] {
  if (s.sample_prompts.length) return s.sample_prompts.map((text) => ({ text, ids: sequenceIds(tokenizer, text) }));
  const distinct = new Map(pairs.map((p) => [JSON.stringify(p.prompt.ids), p.prompt]));
  return [...distinct.values()].slice(0, SAMPLE_PROMPTS);
}

/** Warns of the pairs left out and the ones truncated, naming the file and how many of each. */
function reportData(file: string, read: number, data: DpoData, limits: DpoLimits, emit: EmitEvent): void {
  const warn = (message: string) => emit({ type: 'log', level: 'warn', message: `${file}: ${message}` });
  const { same, empty, cut } = data.leftOut;
  const reasons = [
    same && `${same} with the same chosen and rejected response`,
    empty && `${empty} with an empty response`,
    cut && `${cut} with nothing of a response left within max_length (${limits.maxLength} tokens)`,
  ].filter(Boolean);
  if (reasons.length) warn(`${same + empty + cut} of ${read} pairs left out: ${reasons.join(', ')}`);
  const { prompts, sequences } = data.truncated;
  if (prompts)
    warn(`${prompts} prompts were longer than max_prompt_length (${limits.maxPromptLength} tokens) and keep their end`);
  if (sequences)
    warn(
      `${sequences} pairs had a response cut to max_completion_length or a sequence to max_length (${limits.maxLength})`,
    );
}

/** The most scored (response) tokens a batch of `size` pairs can hold: those of the pairs with the most. */
function mostScoredTokens(pairs: DpoPair[], size: number): number {
  const scored = (e: TokenExample) => e.lossMask.slice(1).reduce((a, b) => a + b, 0);
  const counts = pairs.map((p) => scored(p.chosen) + scored(p.rejected)).sort((a, b) => b - a);
  return counts.slice(0, size).reduce((a, b) => a + b, 0);
}

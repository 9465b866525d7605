/** What the training process runs for each command: one function per experiment stage, and generation. */
import * as path from 'path';
import { ProviderChoice } from '../engine/runtime';
import { experimentCandidates, generateCandidates } from '../train/comparisons';
import { incompleteCheckpoint } from '../model/checkpoint-layout';
import { weakRewardModel } from '../model/reward-warnings';
import { isRewardFuncFile } from '../experiment/group-rl';
import { STAGE_INFO } from '../shared/stages';
import {
  EXECUTION_PROVIDERS,
  EmitEvent,
  ExperimentStage,
  GenerateCommand,
  MergeCommand,
  RuntimeOverrides,
  StageModels,
  StartCommand,
  TestRewardsCommand,
} from '../protocol/runner';
import { Rng } from '../util/rng';
import { formatDataError } from '../data/jsonl';
import { Experiment, loadExperiment } from '../experiment/config';
import { resolveModelSpec } from '../hub/resolve';
import { fetchHubData, fetchHubModels, hubOptions } from './hub-models';
import { mergeAdapterFolder } from '../train/merge';
import { sampleFromCheckpoint } from '../train/samples';
import { runDpo } from '../train/dpo';
import { runGroupRl } from '../train/group-rl';
import { runPpo } from '../train/ppo';
import { testRewardFunctions } from '../train/reward-test';
import { runRm } from '../train/reward';
import { runSft } from '../train/sft';

export interface StageContext {
  emit: EmitEvent;
  /** Aborted by `stop` or when the extension host goes away: the trainer saves a checkpoint and returns. */
  signal: AbortSignal;
}

export type StageRunner = (command: StartCommand, context: StageContext) => Promise<void>;

export const stageRunners: Record<ExperimentStage, StageRunner> = {
  sft: (command, context) =>
    stageRun(command, context)
      .then(runSft)
      .then(() => {}),
  comparisons: (command, context) => stageRun(command, context).then(runComparisons),
  rm: (command, context) =>
    stageRun(command, context)
      .then(runRm)
      .then(() => {}),
  ppo: (command, context) =>
    stageRun(command, context)
      .then((run) => withRewardModelWarning(run, [run.experiment.ppo?.reward_model]))
      .then(runPpo)
      .then(() => {}),
  dpo: (command, context) =>
    stageRun(command, context)
      .then(runDpo)
      .then(() => {}),
  grpo: (command, context) =>
    stageRun(command, context)
      .then((run) => withRewardModelWarning(run, rewardModelsOf(run.experiment.grpo)))
      .then((run) => runGroupRl({ ...run, stage: 'grpo' }))
      .then(() => {}),
  rloo: (command, context) =>
    stageRun(command, context)
      .then((run) => withRewardModelWarning(run, rewardModelsOf(run.experiment.rloo)))
      .then((run) => runGroupRl({ ...run, stage: 'rloo' }))
      .then(() => {}),
};

type StageRun = Awaited<ReturnType<typeof stageRun>>;

/** The stage's experiment, with its Hub models and datasets fetched. */
async function stageRun(command: StartCommand, context: StageContext) {
  const { emit, signal } = context;
  const incomplete =
    command.resumeFrom && incompleteCheckpoint(command.resumeFrom, STAGE_INFO[command.stage].checkpointModels);
  if (incomplete) throw new Error(`cannot resume from ${command.resumeFrom}: ${incomplete}`);
  const loaded = withRuntime(loadExperiment(command.configFile, command.workspaceFolder), command.runtime);
  const experiment = withSteps(withModels(loaded, command.models, emit), command.stage, command.steps);
  await fetchHubModels(experiment, command.stage, command.resumeFrom !== undefined, context);
  await fetchHubData(experiment, command.stage, context);
  const { outputDir, resumeFrom, sampleFrom } = command;
  return { experiment, outputDir, resumeFrom, sampleFrom, emit, signal };
}

/**
 * A stage that scores with a weak reward model (its training warned) says so in the log as it
 * starts, and again in its final warning.
 */
export function withRewardModelWarning<R extends { emit: EmitEvent }>(run: R, rewardModels: (string | undefined)[]): R {
  const weak = rewardModels
    .map(weakRewardModel)
    .filter((w) => w !== undefined)
    .join('; ');
  if (!weak) return run;
  run.emit({ type: 'log', level: 'warn', message: weak });
  const warned = (warning?: string) => (warning ? `${warning}; ${weak}` : weak);
  return { ...run, emit: (e) => run.emit(e.type === 'done' && !e.stopped ? { ...e, warning: warned(e.warning) } : e) };
}

/** The reward models among a GRPO or RLOO section's reward_funcs (the rest are files of functions). */
function rewardModelsOf(section: { reward_funcs: string[] } | undefined): string[] {
  return (section?.reward_funcs ?? []).filter((entry) => !isRewardFuncFile(entry));
}

/** Samples candidate pairs into the labeling queue; stopping keeps what is queued, and a new run goes on from there. */
async function runComparisons({ experiment: exp, outputDir, sampleFrom, emit, signal }: StageRun): Promise<void> {
  const c = exp.comparisons;
  if (!c)
    throw new Error('the experiment has no "comparisons" section: add one with the prompts to sample candidates for');
  if (sampleFrom)
    emit({ type: 'log', level: 'info', message: `sampling from ${sampleFrom.source}: ${sampleFrom.model}` });
  const summary = await generateCandidates({
    ...experimentCandidates(exp, sampleFrom?.model ?? c.model ?? exp.model, c.queue),
    source: sampleFrom?.source,
    signal,
    onProgress: (p) =>
      emit({ type: 'progress', stage: 'comparisons', step: p.done, total: p.total, message: `${p.pairs} pairs` }),
  });
  emit({ type: 'log', level: 'info', message: summary.read });
  for (const e of summary.errors) emit({ type: 'log', level: 'warn', message: formatDataError(e) });
  const already = summary.alreadyQueued > 0 ? `; ${summary.alreadyQueued} prompts were queued before` : '';
  emit({
    type: 'log',
    level: 'info',
    message: `${summary.pairs} pairs from ${summary.sampled} prompts added to ${c.queue}${already}`,
  });
  emit({ type: 'done', stage: 'comparisons', step: summary.sampled, outputDir, stopped: summary.stopped });
}

/** Test Reward Functions: the section's reward functions on a few completions, as one `samples` event. */
export async function runRewardTest(command: TestRewardsCommand, context: StageContext): Promise<void> {
  const { emit } = context;
  const loaded = withRuntime(loadExperiment(command.configFile, command.workspaceFolder), command.runtime);
  const experiment = withModels(loaded, command.models, emit);
  await fetchHubModels(experiment, command.stage, false, context);
  const log = (message: string) => emit({ type: 'log', level: 'info', message });
  const rows = await testRewardFunctions({
    experiment,
    stage: command.stage,
    prompts: command.prompts,
    seed: command.seed,
    log,
  });
  emit({ type: 'samples', stage: command.stage, step: 0, rows });
  emit({ type: 'done', stage: command.stage, step: 0, outputDir: path.dirname(command.configFile), stopped: false });
}

export async function runGeneration(command: GenerateCommand, context: StageContext): Promise<void> {
  const { emit } = context;
  const runtime = { ...command.runtime, log: (message: string) => emit({ type: 'log', level: 'info', message }) };
  const model = path.resolve(await resolveModelSpec(command.model, hubOptions(context)));
  const rows = await sampleFromCheckpoint(model, command.prompts, new Rng(command.seed), command.sampling, runtime);
  emit({ type: 'samples', stage: 'generate', step: 0, rows });
  emit({ type: 'done', stage: 'generate', step: 0, outputDir: command.model, stopped: false });
}

export async function runMerge(command: MergeCommand, { emit }: StageContext): Promise<void> {
  mergeAdapterFolder(command.adapter, command.outputDir);
  emit({ type: 'done', stage: 'merge', step: 0, outputDir: command.outputDir, stopped: false });
}

/** VS Code's settings win over the experiment file's `runtime` section. */
function withRuntime(experiment: Experiment, overrides: RuntimeOverrides = {}): Experiment {
  if (overrides.provider) experiment.runtime.provider = overrides.provider;
  if (overrides.threads) experiment.runtime.threads = overrides.threads;
  return experiment;
}

/** A step count set for this run, in place of its stage's max_steps (PPO: its iterations). */
function withSteps(experiment: Experiment, stage: ExperimentStage, steps: number | undefined): Experiment {
  const { sft, rm, ppo, dpo } = experiment;
  if (steps && stage === 'dpo' && dpo) dpo.max_steps = steps;
  const group = (stage === 'grpo' || stage === 'rloo') && experiment[stage];
  if (steps && group) group.max_steps = steps;
  if (steps && stage === 'sft' && sft) sft.max_steps = steps;
  if (steps && stage === 'rm' && rm) rm.max_steps = steps;
  if (steps && stage === 'ppo' && ppo) ppo.total_episodes = steps * ppo.per_device_train_batch_size;
  return experiment;
}

/** Fills the config's unset model fields with the earlier stages' models, and says so. */
function withModels(experiment: Experiment, models: StageModels = {}, emit: EmitEvent): Experiment {
  const use = (what: string, model: string | undefined) => {
    if (model) emit({ type: 'log', level: 'info', message: `${what}: ${model}` });
    return model;
  };
  const { comparisons: c, rm, ppo } = experiment;
  if (c && !c.model) c.model = use('sampling from the SFT model', models.sft);
  if (rm && !rm.model) rm.model = use('reward model backbone: the SFT model', models.sft);
  if (ppo && !ppo.sft_model) ppo.sft_model = use('policy and reference: the SFT model', models.sft);
  if (ppo && !ppo.reward_model) ppo.reward_model = use('reward model', models.rm);
  if (experiment.dpo && !experiment.dpo.model)
    experiment.dpo.model = use('policy and reference: the SFT model', models.sft);
  for (const group of [experiment.grpo, experiment.rloo])
    if (group && !group.model) group.model = use('policy and reference: the SFT model', models.sft);
  return experiment;
}

// The protocol's provider list is a copy (the host must not import the engine); fail to compile if they drift apart.
type SameMembers<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
true satisfies SameMembers<(typeof EXECUTION_PROVIDERS)[number], ProviderChoice>;

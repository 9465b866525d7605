/**
 * What the training process runs for each command: one function per experiment stage, and
 * generation. A stage joins this map when its trainer exists; listing it in AVAILABLE_STAGES
 * (src/protocol/runner.ts) is what makes the extension offer it, and the types keep both equal.
 */
import * as path from 'path';
import { ProviderChoice } from '../engine/runtime';
import { AvailableStage, EXECUTION_PROVIDERS, EmitEvent, GenerateCommand, RuntimeOverrides, StartCommand } from '../protocol/runner';
import { Rng } from '../util/rng';
import { Experiment, loadExperiment } from '../train/config';
import { sampleFromCheckpoint } from '../train/samples';
import { runPpo } from '../train/ppo';
import { runRm } from '../train/reward';
import { runSft } from '../train/sft';

export interface StageContext {
  emit: EmitEvent;
  /** Aborted by `stop` or when the extension host goes away: the trainer saves a checkpoint and returns. */
  signal: AbortSignal;
}

export type StageRunner = (command: StartCommand, context: StageContext) => Promise<void>;

export const stageRunners: { [S in AvailableStage]: StageRunner } = {
  sft: (command, context) => runSft(stageRun(command, context)).then(() => {}),
  rm: (command, context) => runRm(stageRun(command, context)).then(() => {}),
  ppo: (command, context) => runPpo(stageRun(command, context)).then(() => {}),
};

function stageRun(command: StartCommand, { emit, signal }: StageContext) {
  const experiment = withRuntime(loadExperiment(command.configFile), command.runtime);
  return { experiment, outputDir: command.outputDir, resumeFrom: command.resumeFrom, emit, signal };
}

export async function runGeneration(command: GenerateCommand, { emit }: StageContext): Promise<void> {
  const runtime = { ...command.runtime, log: (message: string) => emit({ type: 'log', level: 'info', message }) };
  const rows = await sampleFromCheckpoint(path.resolve(command.model), command.prompts, new Rng(command.seed), command.sampling, runtime);
  emit({ type: 'samples', stage: 'generate', step: 0, rows });
  emit({ type: 'done', stage: 'generate', step: 0, outputDir: command.model, stopped: false });
}

/** VS Code's settings win over the experiment file's `runtime` section. */
function withRuntime(experiment: Experiment, overrides: RuntimeOverrides = {}): Experiment {
  if (overrides.provider) experiment.runtime.provider = overrides.provider;
  if (overrides.threads) experiment.runtime.threads = overrides.threads;
  return experiment;
}

// The protocol's provider list is a copy (the host must not import the engine); fail to compile if they drift apart.
type SameMembers<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
true satisfies SameMembers<(typeof EXECUTION_PROVIDERS)[number], ProviderChoice>;

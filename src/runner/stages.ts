/**
 * What the training process runs for each command: one function per experiment stage, and
 * generation. A stage joins this map when its trainer exists; listing it in AVAILABLE_STAGES
 * (src/protocol/runner.ts) is what makes the extension offer it, and the types keep both equal.
 */
import * as path from 'path';
import { ProviderChoice, Runtime } from '../engine/runtime';
import { State } from '../engine/step';
import { gpt2Tokenizer } from '../model/tokenizer';
import { AvailableStage, EXECUTION_PROVIDERS, EmitEvent, GenerateCommand, RuntimeOverrides, StartCommand } from '../protocol/runner';
import { Rng } from '../util/rng';
import { Experiment, loadExperiment } from '../train/config';
import { Generator } from '../train/generate';
import { loadModel, putTensors } from '../train/model-state';
import { sampleResponses } from '../train/samples';
import { runSft } from '../train/sft';

export interface StageContext {
  emit: EmitEvent;
  /** Aborted by `stop` or when the extension host goes away: the trainer saves a checkpoint and returns. */
  signal: AbortSignal;
}

export type StageRunner = (command: StartCommand, context: StageContext) => Promise<void>;

export const stageRunners: { [S in AvailableStage]: StageRunner } = {
  sft: async (command, { emit, signal }) => {
    const experiment = withRuntime(loadExperiment(command.configFile), command.runtime);
    await runSft({ experiment, outputDir: command.outputDir, resumeFrom: command.resumeFrom, emit, signal });
  },
};

export async function runGeneration(command: GenerateCommand, { emit }: StageContext): Promise<void> {
  const model = loadModel(path.resolve(command.model), command.seed);
  const runtime = await Runtime.create({ ...command.runtime, log: (message) => emit({ type: 'log', level: 'info', message }) });
  const state = new State(runtime);
  putTensors(state, model.params);
  const tokenizer = gpt2Tokenizer();
  const generator = await Generator.create(runtime, model.config, state, tokenizer.padId);
  const rows = await sampleResponses(generator, tokenizer, command.prompts, new Rng(command.seed), command.sampling);
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

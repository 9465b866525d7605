/**
 * The boundary between the extension host and a training process: commands in, events out. Both
 * sides import this file and validate every message on arrival, since the other side may be an
 * older build, buggy, or not ours. The CLI prints the same events. Metric names follow TRL.
 *
 * This file must stay free of engine imports: the extension host loads it and never loads
 * onnxruntime.
 */
import { z } from 'zod';
import { Parsed, parseWith } from './parse';

/** Every stage an event can come from. */
export const STAGES = [
  'sft',
  'comparisons',
  'rm',
  'ppo',
  'dpo',
  'grpo',
  'rloo',
  'generate',
  'merge',
  'margins',
] as const;
export type Stage = (typeof STAGES)[number];

/** Stages that run from an experiment config into a run directory (the runs in the Runs view). */
export const EXPERIMENT_STAGES = ['sft', 'comparisons', 'rm', 'ppo', 'dpo', 'grpo', 'rloo'] as const;
export type ExperimentStage = (typeof EXPERIMENT_STAGES)[number];

/** The engine's provider choices (src/runner/stages.ts checks that they match the engine's). */
export const EXECUTION_PROVIDERS = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'] as const;

// ── Events: training process → host ────────────────────────────────────────────────────────────

const stage = z.enum(STAGES);
const step = z.number().int().min(0);
const bytes = z.number().int().min(0);
/** Any JS number: a diverging metric (NaN, Infinity) is worth showing, not a reason to drop the event. */
const metricValue = z.custom<number>((v) => typeof v === 'number', 'expected a number');

export const sampleRowSchema = z.object({
  prompt: z.string(),
  response: z.string(),
  score: z.number().optional(),
  kl: z.number().optional(),
  /** GRPO's and RLOO's reward of each reward function, by name (null: the function gave none). */
  rewards: z.record(z.string(), z.number().nullable()).optional(),
});

export const runEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('log'), level: z.enum(['info', 'warn', 'error']), message: z.string() }),
  z.object({ type: z.literal('progress'), stage, step, total: step, message: z.string().optional() }),
  /** A model fetched from the Hugging Face Hub before the stage starts: bytes of all its files. */
  z.object({
    type: z.literal('download'),
    repo: z.string(),
    file: z.string(),
    received: bytes,
    total: bytes,
    bytesPerSecond: z.number().min(0),
  }),
  /** `time`: when the step was logged, in seconds since the epoch, as in metrics.jsonl. */
  z.object({
    type: z.literal('metrics'),
    stage,
    step,
    time: z.number().optional(),
    values: z.record(z.string(), metricValue),
  }),
  z.object({ type: z.literal('samples'), stage, step, rows: z.array(sampleRowSchema) }),
  z.object({ type: z.literal('checkpoint'), stage, step, path: z.string() }),
  /** A process started for debugging listens for the Node inspector at `url` and waits for it to attach. */
  z.object({ type: z.literal('debugger'), url: z.string() }),
  /** `warning`: the run ended, but something about it needs a look (a training loss that climbed). */
  z.object({
    type: z.literal('done'),
    stage,
    step,
    outputDir: z.string(),
    stopped: z.boolean(),
    warning: z.string().optional(),
  }),
]);

/** The last event of a process that failed; `logTail` holds its last log lines for the report. */
export const errorEventSchema = z.object({
  type: z.literal('error'),
  message: z.string(),
  logTail: z.array(z.string()),
});

export const processEventSchema = z.union([runEventSchema, errorEventSchema]);

export type SampleRow = z.infer<typeof sampleRowSchema>;
export type RunEvent = z.infer<typeof runEventSchema>;
export type ErrorEvent = z.infer<typeof errorEventSchema>;
export type ProcessEvent = z.infer<typeof processEventSchema>;
export type EmitEvent = (event: RunEvent) => void;

// ── Commands: host → training process ──────────────────────────────────────────────────────────

/** Settings from VS Code that take precedence over the experiment file's `runtime` section. */
export const runtimeOverridesSchema = z.object({
  provider: z.enum(EXECUTION_PROVIDERS).optional(),
  threads: z.number().int().positive().optional(),
});

/**
 * The models of earlier stages of the same experiment (the newest finished SFT and reward-model
 * runs), for the config fields that name no model: comparisons.model, rm.model, ppo.sft_model,
 * ppo.reward_model and dpo.model. A field the config sets wins.
 */
export const stageModelsSchema = z.object({ sft: z.string().min(1).optional(), rm: z.string().min(1).optional() });

/** A run's model to sample comparisons from, and the run's name the pairs carry as their "source". */
export const sampleFromSchema = z.object({ model: z.string().min(1), source: z.string().min(1) });

/**
 * Runs one experiment stage; `outputDir` is the run directory. The experiment file and every file
 * it names must be inside `workspaceFolder` (src/train/config.ts refuses the rest).
 */
export const startCommandSchema = z.object({
  type: z.literal('start'),
  stage: z.enum(EXPERIMENT_STAGES),
  configFile: z.string().min(1),
  workspaceFolder: z.string().min(1),
  outputDir: z.string().min(1),
  /** A checkpoint directory to continue from. */
  resumeFrom: z.string().min(1).optional(),
  runtime: runtimeOverridesSchema.optional(),
  models: stageModelsSchema.optional(),
  /** Overrides the stage's max_steps (PPO: its iterations), as the CLI's --steps does. */
  steps: z.number().int().positive().optional(),
  /** comparisons: sample from this model in place of comparisons.model, tagging each pair with `source`. */
  sampleFrom: sampleFromSchema.optional(),
});

/** Continues prompts with a model; answers with one `samples` event, then `done`. */
export const generateCommandSchema = z.object({
  type: z.literal('generate'),
  model: z.string().min(1),
  prompts: z.array(z.string().min(1)).min(1),
  sampling: z.object({
    maxNewTokens: z.number().int().positive(),
    temperature: z.number().min(0),
    topK: z.number().int().min(0),
    topP: z.number().gt(0).max(1),
  }),
  seed: z.number().int().min(0),
  runtime: runtimeOverridesSchema.optional(),
});

/**
 * Runs the reward functions of a GRPO or RLOO section on completions sampled from its policy (the
 * prompts' "completion" or "answer" column where the policy is a preset with fresh weights), without
 * training; answers with one `samples` event, each row with every function's reward, then `done`.
 */
export const testRewardsCommandSchema = z.object({
  type: z.literal('test-rewards'),
  stage: z.enum(['grpo', 'rloo']),
  configFile: z.string().min(1),
  workspaceFolder: z.string().min(1),
  /** Prompts to sample (each gets num_generations completions). */
  prompts: z.number().int().positive(),
  seed: z.number().int().min(0),
  runtime: runtimeOverridesSchema.optional(),
  models: stageModelsSchema.optional(),
});

/** Writes a PEFT adapter folder merged into its base as a full model folder; answers with `done`. */
export const mergeCommandSchema = z.object({
  type: z.literal('merge'),
  adapter: z.string().min(1),
  outputDir: z.string().min(1),
});

/**
 * Scores a labeling queue's pairs with a reward model, appending r(A) − r(B) of each pair not yet
 * in `cache` (src/data/margins.ts); answers with `progress` events, then `done`. With `dpo` the
 * model is a DPO run's policy, scored by its implicit reward against the reference of the
 * experiment's dpo section (`models`: the earlier stages' models the run started with).
 */
export const scoreQueueCommandSchema = z.object({
  type: z.literal('score-queue'),
  model: z.string().min(1),
  queue: z.string().min(1),
  cache: z.string().min(1),
  dpo: z
    .object({
      configFile: z.string().min(1),
      workspaceFolder: z.string().min(1),
      models: stageModelsSchema.optional(),
    })
    .optional(),
  runtime: runtimeOverridesSchema.optional(),
});

/** Ends the run after the current step, saving a checkpoint. */
export const stopCommandSchema = z.object({ type: z.literal('stop') });

export const runnerCommandSchema = z.discriminatedUnion('type', [
  startCommandSchema,
  generateCommandSchema,
  testRewardsCommandSchema,
  mergeCommandSchema,
  scoreQueueCommandSchema,
  stopCommandSchema,
]);

export type RuntimeOverrides = z.infer<typeof runtimeOverridesSchema>;
export type StageModels = z.infer<typeof stageModelsSchema>;
export type StartCommand = z.infer<typeof startCommandSchema>;
export type SampleFrom = z.infer<typeof sampleFromSchema>;
export type GenerateCommand = z.infer<typeof generateCommandSchema>;
export type TestRewardsCommand = z.infer<typeof testRewardsCommandSchema>;
export type MergeCommand = z.infer<typeof mergeCommandSchema>;
export type ScoreQueueCommand = z.infer<typeof scoreQueueCommandSchema>;
export type RunnerCommand = z.infer<typeof runnerCommandSchema>;

// ── Validation on arrival ──────────────────────────────────────────────────────────────────────

export const parseCommand = (message: unknown): Parsed<RunnerCommand> => parseWith(runnerCommandSchema, message);
export const parseEvent = (message: unknown): Parsed<ProcessEvent> => parseWith(processEventSchema, message);

/**
 * The experiment config file: one JSON file per experiment, one section per stage. Keys use TRL's
 * names where TRL has one (learning_rate, warmup_steps, max_grad_norm...), so TRL users feel at
 * home. Paths are relative to the config file, and the files an experiment reads and writes must
 * be inside its workspace folder. No engine import: the extension host reads configs too.
 */
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { decodeUtf8 } from '../data/jsonl';
import { formatDataSpec, parseDataSpec } from '../data/formats/source';
import { hubSpecOf, parseHubSpec } from '../hub/spec';
import { PRESET_NAMES, isPresetName } from '../model/preset-names';
import { EXECUTION_PROVIDERS } from '../protocol/runner';
import { isInsideWorkspace, workspacePathProblem } from '../util/workspace-path';
import { dpoSchema } from './dpo-schema';
import { batchSize, columnsSetting, dataField, evalFraction, optimizerSettings, positiveInt } from './schema-parts';
import { grpoSchema, isRewardFuncFile, rewardFuncFiles, rlooSchema } from './group-rl';
import { peftSchema } from './peft-schema';

const runtimeSchema = z
  .object({
    provider: z
      .enum(EXECUTION_PROVIDERS)
      .default('auto')
      .describe('Execution provider: auto picks a GPU provider that works, else CPU.'),
    threads: positiveInt.optional().describe('CPU threads per op (default: all cores).'),
  })
  .strict();

const modelSizeSchema = z
  .object({ n_layer: positiveInt, n_head: positiveInt, n_embd: positiveInt, n_positions: positiveInt })
  .partial()
  .strict();

export const sftSchema = z
  .object({
    data: dataField(
      "SFT data, records in TRL's formats ({prompt, completion}, {messages}, {text}), Alpaca ({instruction, input, output}) or ShareGPT ({conversations})",
    ),
    columns: columnsSetting,
    eval_fraction: evalFraction.default(0.1),
    max_length: positiveInt.optional().describe('Longest sequence in tokens (default: the model context).'),
    per_device_train_batch_size: batchSize.default(8),
    gradient_accumulation_steps: positiveInt.default(1),
    gradient_checkpointing: z
      .boolean()
      .optional()
      .describe("Recompute each layer's activations in the backward pass: less memory, about a third more time."),
    ...optimizerSettings({
      learning_rate: 5e-4,
      lr_scheduler_type: 'cosine',
      warmup_steps: 20,
      min_lr_ratio: 0.1,
      weight_decay: 0.1,
    }),
    max_steps: positiveInt.default(300),
    logging_steps: positiveInt.default(10),
    eval_steps: positiveInt.default(50),
    save_steps: positiveInt.default(100),
    sample_prompts: z.array(z.string().min(1)).default([]).describe('Prompts to sample before and after training.'),
    peft: peftSchema.optional(),
  })
  .strict();

export const comparisonsSchema = z
  .object({
    prompts: dataField(
      'Prompts to sample candidates for: records with {"prompt": text or chat messages}, or the prompts of SFT records (messages, Alpaca, ShareGPT)',
    ),
    columns: columnsSetting,
    queue: z
      .string()
      .min(1)
      .default('comparisons.jsonl')
      .describe(
        'The labeling queue the pairs are added to (created if missing; a prompt already in it is not sampled again).',
      ),
    preferences: z
      .string()
      .min(1)
      .default('preferences.jsonl')
      .describe("Where labels of this queue are stored (TRL's preference format); usually also rm.data."),
    guidelines: z
      .string()
      .min(1)
      .optional()
      .describe('Labeling guidelines (Markdown) shown above the pair (default: guidelines.md beside the queue).'),
    model: z
      .string()
      .min(1)
      .optional()
      .describe(
        'The model to sample from (default: the newest finished SFT run of this experiment, else the experiment model).',
      ),
    num_candidates: z
      .number()
      .int()
      .min(2)
      .default(2)
      .describe('Responses sampled per prompt; each prompt gives all pairs of its distinct responses.'),
    max_new_tokens: positiveInt.default(48),
    temperature: z.number().positive().default(1),
    top_k: z.number().int().min(0).default(0).describe('Sample from the k most likely tokens (0: all).'),
    top_p: z.number().gt(0).max(1).default(1),
  })
  .strict();

export const rmSchema = z
  .object({
    data: dataField(
      "Preference pairs in TRL's preference format ({prompt, chosen, rejected}, or {chosen, rejected} with an implicit prompt), e.g. the labeling store, or Alpaca/ShareGPT records with chosen and rejected",
    ),
    columns: columnsSetting,
    model: z
      .string()
      .min(1)
      .optional()
      .describe(
        'The backbone: an SFT checkpoint (default: the experiment model). Its LM head is replaced by a fresh scalar head.',
      ),
    include_ties: z
      .boolean()
      .default(false)
      .describe('Also train on pairs labeled "tie" or "both_bad", towards equal rewards (target 0.5).'),
    eval_fraction: evalFraction.default(0.1),
    max_length: positiveInt
      .optional()
      .describe('Longest prompt + response + EOS in tokens; longer pairs are left out (default: the model context).'),
    per_device_train_batch_size: batchSize
      .default(8)
      .describe('Pairs per step (each step scores twice as many sequences).'),
    gradient_accumulation_steps: positiveInt.default(1),
    ...optimizerSettings({
      learning_rate: 1e-4,
      lr_scheduler_type: 'cosine',
      warmup_steps: 10,
      min_lr_ratio: 0.1,
      weight_decay: 0,
    }),
    max_steps: positiveInt
      .default(200)
      .describe('Training steps; an epoch is (training pairs) / per_device_train_batch_size steps.'),
    logging_steps: positiveInt.default(10),
    eval_steps: positiveInt.default(50),
    save_steps: positiveInt.default(100),
    center_rewards_coefficient: z
      .number()
      .positive()
      .optional()
      .describe('Adds this times mean((r_chosen + r_rejected)²) to the loss, keeping rewards centred on 0.'),
    peft: peftSchema.optional(),
  })
  .strict();

export const ppoSchema = z
  .object({
    prompts: dataField(
      'Prompts: records with {"prompt": text or chat messages}, or the prompts of SFT records (messages, Alpaca, ShareGPT)',
    ),
    columns: columnsSetting,
    sft_model: z
      .string()
      .min(1)
      .optional()
      .describe('Policy and reference: an SFT checkpoint (default: the experiment model).'),
    reward_model: z
      .string()
      .min(1)
      .optional()
      .describe('A reward-model checkpoint: scores responses and initialises the value model.'),
    total_episodes: positiveInt
      .default(512)
      .describe('Responses to train on; iterations = total_episodes / per_device_train_batch_size.'),
    per_device_train_batch_size: batchSize.default(16).describe('Prompts per rollout.'),
    num_mini_batches: positiveInt.default(1),
    gradient_accumulation_steps: positiveInt
      .default(1)
      .describe('Micro-batches per mini-batch update, their gradients averaged.'),
    num_ppo_epochs: positiveInt.default(4),
    ...optimizerSettings({
      learning_rate: 3e-6,
      lr_scheduler_type: 'linear',
      warmup_steps: 0,
      min_lr_ratio: 0,
      weight_decay: 0,
    }),
    response_length: positiveInt.default(53),
    temperature: z.number().positive().default(0.7),
    missing_eos_penalty: z
      .number()
      .min(0)
      .optional()
      .describe('Subtracted from the score of responses that do not end with EOS.'),
    kl_coef: z.number().min(0).default(0.05),
    kl_estimator: z.enum(['k1', 'k3']).default('k1'),
    adaptive_kl: z
      .object({ target: z.number().positive(), horizon: positiveInt })
      .strict()
      .optional()
      .describe('Adapt kl_coef towards a target KL (Ziegler et al.).'),
    whiten_rewards: z.boolean().default(false),
    cliprange: z.number().positive().default(0.2),
    cliprange_value: z.number().positive().default(0.2),
    vf_coef: z.number().min(0).default(0.1),
    gamma: z.number().min(0).max(1).default(1),
    lam: z.number().min(0).max(1).default(0.95),
    logging_steps: positiveInt.default(1),
    save_steps: positiveInt.default(20).describe('Iterations between checkpoints.'),
    sample_steps: positiveInt.default(5).describe('Iterations between sample tables.'),
    peft: peftSchema
      .optional()
      .describe(
        'Train adapters for the policy and value model over one shared copy of the SFT model, whose adapters off are the reference.',
      ),
  })
  .strict();

export const experimentSchema = z
  .object({
    $schema: z.string().optional(),
    name: z.string().min(1).default('experiment'),
    seed: z.number().int().min(0).default(42),
    model: z
      .string()
      .min(1)
      .default('tiny')
      .describe(
        `A preset (${PRESET_NAMES.join(', ')}), a checkpoint directory, or a Hugging Face Hub repo id ("org/name" or "org/name@revision").`,
      ),
    model_revision: z
      .string()
      .min(1)
      .optional()
      .describe('The Hub revision (branch, tag or commit) of "model" when it is a Hub repo id (default: main).'),
    model_size: modelSizeSchema.optional().describe('Overrides of the preset size, for custom models.'),
    torch_dtype: z
      .enum(['auto', 'float32', 'bfloat16', 'float16'])
      .default('auto')
      .describe(
        "The dtype finished models are saved in (config.json's torch_dtype); auto: the dtype of the model each was trained from (float32 for a preset). Training always computes in float32, and checkpoint-N folders keep float32 weights to resume from.",
      ),
    chat_template_kwargs: z
      .record(z.string(), z.unknown())
      .optional()
      .describe(
        'Extra variables for the model\'s chat template, as apply_chat_template takes them: e.g. {"enable_thinking": false} for Qwen3.',
      ),
    runtime: runtimeSchema.default({ provider: 'auto' }),
    sft: sftSchema.optional(),
    comparisons: comparisonsSchema.optional(),
    rm: rmSchema.optional(),
    ppo: ppoSchema.optional(),
    dpo: dpoSchema.optional(),
    grpo: grpoSchema.optional(),
    rloo: rlooSchema.optional(),
  })
  .strict();

export type Experiment = z.infer<typeof experimentSchema>;
export type SftSettings = z.infer<typeof sftSchema>;
export type ComparisonsSettings = z.infer<typeof comparisonsSchema>;
export type RmSettings = z.infer<typeof rmSchema>;
export type PpoSettings = z.infer<typeof ppoSchema>;
export type DpoSettings = z.infer<typeof dpoSchema>;
export type { GrpoSettings, RlooSettings, GroupRlSettings } from './group-rl';
export type PeftSettings = z.infer<typeof peftSchema>;

export class ConfigError extends Error {}

/** Validates a parsed config; errors name the file and each offending field. */
export function parseExperiment(json: unknown, file: string): Experiment {
  const result = experimentSchema.safeParse(json);
  if (!result.success) {
    const lines = result.error.issues.map(
      (i) => `${file}: ${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`,
    );
    throw new ConfigError(lines.join('\n'));
  }
  return result.data;
}

/**
 * Reads and validates a config file inside the workspace folder `workspace`; relative paths in it
 * become absolute, and every file it reads or writes must be inside `workspace` too (see
 * `WORKSPACE_FIELDS`), else the ConfigError names each field that leads out.
 */
export function loadExperiment(file: string, workspace: string): Experiment {
  // Checked before reading, so nothing of a file outside is ever shown (in a JSON error, say).
  if (!isInsideWorkspace(file, workspace))
    throw new ConfigError(`${file}: the experiment file is outside the workspace folder ${workspace}`);
  return placed(parseExperiment(readConfigJson(file), file), file, workspace);
}

/** Makes a validated config's paths absolute and checks that its files are inside `workspace`. */
export function placed(exp: Experiment, file: string, workspace: string): Experiment {
  resolvePaths(exp, path.dirname(path.resolve(file)), file);
  applyModelRevision(exp, file);
  const fields = [
    ...WORKSPACE_FIELDS.map(([field, get]): [string, string | undefined] => [field, get(exp)]),
    ...rewardFuncFiles('grpo', exp.grpo),
    ...rewardFuncFiles('rloo', exp.rloo),
  ];
  const problems = fields.flatMap(([field, value]) => {
    const local = value === undefined ? undefined : parseDataSpec(value);
    const problem = local && !local.hub ? workspacePathProblem(field, local.path, workspace) : undefined;
    return problem === undefined ? [] : [`${file}: ${problem}`];
  });
  if (problems.length > 0) throw new ConfigError(problems.join('\n'));
  return exp;
}

function readConfigJson(file: string): unknown {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new ConfigError(`${file}: cannot read the config file (${(e as Error).message})`);
  }
  let text: string;
  try {
    text = decodeUtf8(bytes);
  } catch {
    throw new ConfigError(`${file}: not UTF-8 text`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/**
 * The data and output files of an experiment, which must be inside its workspace folder. The model
 * fields (`model`, `comparisons.model`, `rm.model`, `ppo.sft_model`, `ppo.reward_model`, `dpo.model`) are not
 * confined: they name model folders that are only ever read, and parsed as models (config.json,
 * safetensors, tokenizer), which may live elsewhere (a shared checkpoint or model cache). The reward
 * function files of `grpo` and `rloo` are confined too: they run as code.
 */
const WORKSPACE_FIELDS: [string, (exp: Experiment) => string | undefined][] = [
  ['sft.data', (exp) => exp.sft?.data],
  ['comparisons.prompts', (exp) => exp.comparisons?.prompts],
  ['comparisons.queue', (exp) => exp.comparisons?.queue],
  ['comparisons.preferences', (exp) => exp.comparisons?.preferences],
  ['comparisons.guidelines', (exp) => exp.comparisons?.guidelines],
  ['rm.data', (exp) => exp.rm?.data],
  ['ppo.prompts', (exp) => exp.ppo?.prompts],
  ['dpo.data', (exp) => exp.dpo?.data],
  ['grpo.prompts', (exp) => exp.grpo?.prompts],
  ['rloo.prompts', (exp) => exp.rloo?.prompts],
];

/**
 * Makes the config's paths absolute, relative to `dir` (the config file's folder); presets and Hub
 * repo ids stay names (a folder of the repo id's name wins).
 */
function resolvePaths(exp: Experiment, dir: string, file: string): void {
  const resolve = (p: string) => path.resolve(dir, p);
  const resolveModel = (m: string) => (isPresetName(m) || hubSpecOf(m, resolve(m)) ? m : resolve(m));
  const resolveData = (field: string, spec: string) => {
    let data;
    try {
      data = parseDataSpec(spec);
    } catch (e) {
      throw new ConfigError(`${file}: ${field}: ${(e as Error).message}`);
    }
    return formatDataSpec(data.hub ? data : { ...data, path: resolve(data.path) });
  };
  if (exp.sft) exp.sft.data = resolveData('sft.data', exp.sft.data);
  if (exp.comparisons) {
    const c = exp.comparisons;
    [c.queue, c.preferences] = [resolve(c.queue), resolve(c.preferences)];
    if (c.guidelines) c.guidelines = resolve(c.guidelines);
    c.prompts = resolveData('comparisons.prompts', c.prompts);
    if (c.model) c.model = resolveModel(c.model);
  }
  if (exp.rm) {
    exp.rm.data = resolveData('rm.data', exp.rm.data);
    if (exp.rm.model) exp.rm.model = resolveModel(exp.rm.model);
  }
  if (exp.ppo) {
    exp.ppo.prompts = resolveData('ppo.prompts', exp.ppo.prompts);
    if (exp.ppo.sft_model) exp.ppo.sft_model = resolveModel(exp.ppo.sft_model);
    if (exp.ppo.reward_model) exp.ppo.reward_model = resolveModel(exp.ppo.reward_model);
  }
  if (exp.dpo) {
    exp.dpo.data = resolveData('dpo.data', exp.dpo.data);
    if (exp.dpo.model) exp.dpo.model = resolveModel(exp.dpo.model);
  }
  for (const g of [exp.grpo, exp.rloo]) {
    if (!g) continue;
    g.prompts = resolveData(`${g === exp.grpo ? 'grpo' : 'rloo'}.prompts`, g.prompts);
    g.reward_funcs = g.reward_funcs.map((f) => (isRewardFuncFile(f) ? resolve(f) : resolveModel(f)));
    if (g.model) g.model = resolveModel(g.model);
  }
  exp.model = resolveModel(exp.model);
}

/** `model_revision` (TRL's name) joins the Hub repo id in `model` as "org/name@revision". */
function applyModelRevision(exp: Experiment, file: string): void {
  if (!exp.model_revision) return;
  if (!parseHubSpec(exp.model) || exp.model.includes('@')) {
    throw new ConfigError(
      `${file}: model_revision: applies to a Hub repo id in "model" ("org/name", without "@revision"), but "model" is ${JSON.stringify(exp.model)}`,
    );
  }
  exp.model = `${exp.model}@${exp.model_revision}`;
}

/** The JSON schema of the config file (for editor completion and validation). */
export function experimentJsonSchema(): object {
  return z.toJSONSchema(experimentSchema, { io: 'input' });
}

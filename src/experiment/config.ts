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
import { comparisonsSchema } from './comparisons-schema';
import { dpoSchema } from './dpo-schema';
import { positiveInt } from './schema-parts';
import { grpoSchema, isRewardFuncFile, rewardFuncFiles, rlooSchema } from './group-rl';
import { peftSchema } from './peft-schema';
import { ppoSchema } from './ppo-schema';
import { rmSchema } from './rm-schema';
import { sftSchema } from './sft-schema';

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

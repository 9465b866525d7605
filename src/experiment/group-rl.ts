/**
 * The "grpo" and "rloo" sections: online RL from rewards of groups of completions per prompt, with
 * TRL's GRPOConfig and RLOOConfig names. A rollout samples `num_generations` completions for each of
 * (per_device_train_batch_size × gradient_accumulation_steps) / num_generations prompts.
 */
import { z } from 'zod';
import { peftSchema } from './peft-schema';
import { batchSize, columnsSetting, dataField, modelField, optimizerSettings, positiveInt } from './schema-parts';

/** A reward_funcs entry that names a file of reward functions (else it names a reward model). */
export const REWARD_FUNC_FILE = /\.(ts|mts|cts|js|mjs|cjs)$/;

export const isRewardFuncFile = (entry: string) => REWARD_FUNC_FILE.test(entry);

/** How completions are sampled (TRL's generation settings). */
const samplingFields = {
  max_completion_length: positiveInt.default(256),
  temperature: z.number().positive().default(1),
  top_p: z.number().gt(0).max(1).default(1),
  top_k: z.number().int().min(0).default(0).describe('Sample from the k most likely tokens (0: all).'),
};

function groupRlFields(d: { num_generations: number; beta: number }) {
  return {
    prompts: dataField(
      'Prompts: records with a "prompt" (text or chat messages) or the prompt of another format; the other columns are passed to the reward functions',
    ),
    columns: columnsSetting,
    model: modelField(
      'The policy to train, and the reference (default: the newest SFT run of this experiment, else "model").',
    ),
    reward_funcs: z
      .array(z.string().min(1))
      .min(1)
      .describe(
        'Rewards: workspace files (.ts, .js, .mjs) whose exported functions each return one reward per completion, and/or reward-model checkpoints.',
      ),
    reward_weights: z
      .array(z.number())
      .optional()
      .describe(
        'One weight per reward function, in order (default: 1 each); a file counts once per exported function.',
      ),
    num_generations: z.number().int().min(2).default(d.num_generations).describe('Completions sampled per prompt.'),
    per_device_train_batch_size: batchSize
      .default(8)
      .describe('Completions per micro-batch; a rollout is this × gradient_accumulation_steps completions.'),
    gradient_accumulation_steps: positiveInt.default(1),
    ...optimizerSettings({
      learning_rate: 1e-6,
      lr_scheduler_type: 'linear',
      warmup_steps: 0,
      min_lr_ratio: 0,
      weight_decay: 0,
    }),
    max_steps: positiveInt.default(100).describe('Rollouts; each is followed by num_iterations optimizer updates.'),
    num_iterations: positiveInt.default(1).describe('Updates on each rollout (μ).'),
    ...samplingFields,
    beta: z
      .number()
      .min(0)
      .default(d.beta)
      .describe('KL coefficient against the frozen reference; 0 loads no reference model.'),
    epsilon: z.number().positive().default(0.2).describe('Lower clip range of the importance ratio.'),
    epsilon_high: z.number().positive().optional().describe('Upper clip range (default: epsilon).'),
    mask_truncated_completions: z
      .boolean()
      .default(false)
      .describe('Leave completions that did not end with EOS out of the loss.'),
    logging_steps: positiveInt.default(1),
    save_steps: positiveInt.default(20).describe('Rollouts between checkpoints.'),
    sample_steps: positiveInt.default(5).describe('Rollouts between sample tables.'),
    peft: peftSchema.optional(),
  };
}

type GroupFields = { reward_funcs: string[] };
type Batching = { per_device_train_batch_size: number; gradient_accumulation_steps: number; num_generations: number };

/** The check across fields; reward_weights are counted once the reward functions are loaded. */
function checkGroupFields(s: Batching, ctx: z.RefinementCtx): void {
  const rollout = s.per_device_train_batch_size * s.gradient_accumulation_steps;
  if (rollout % s.num_generations !== 0)
    ctx.addIssue({
      code: 'custom',
      path: ['num_generations'],
      message: `must divide per_device_train_batch_size × gradient_accumulation_steps (${rollout}), the completions of a rollout`,
    });
}

export const grpoSchema = z
  .object({
    ...groupRlFields({ num_generations: 8, beta: 0 }),
    loss_type: z
      .enum(['grpo', 'bnpo', 'dr_grpo', 'dapo'])
      .default('dapo')
      .describe(
        'How per-token losses are averaged: per sequence (grpo), over the micro-batch (bnpo), over batch × max_completion_length (dr_grpo), over the rollout (dapo).',
      ),
    scale_rewards: z
      .union([z.enum(['group', 'batch', 'none']), z.boolean()])
      .default('group')
      .transform((v) => (v === true ? 'group' : v === false ? 'none' : v))
      .describe(
        'Divide advantages by the std of the group, of the whole batch, or not at all (true: group, false: none).',
      ),
  })
  .strict()
  .superRefine(checkGroupFields);

export const rlooSchema = z
  .object({
    ...groupRlFields({ num_generations: 2, beta: 0.05 }),
    normalize_advantages: z.boolean().default(false).describe('Whiten the advantages across the rollout.'),
  })
  .strict()
  .superRefine(checkGroupFields);

export type GrpoSettings = z.infer<typeof grpoSchema>;
export type RlooSettings = z.infer<typeof rlooSchema>;
export type GroupRlSettings = GrpoSettings | RlooSettings;

/** The reward function files of a section, by field name, for the workspace check. */
export function rewardFuncFiles(section: 'grpo' | 'rloo', s: GroupFields | undefined): [string, string][] {
  return (s?.reward_funcs ?? []).flatMap((f, i) => (isRewardFuncFile(f) ? [[`${section}.reward_funcs.${i}`, f]] : []));
}

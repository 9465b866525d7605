/** The "ppo" section of the experiment config: TRL's PPOConfig names and defaults. */
import { z } from 'zod';
import { peftSchema } from './peft-schema';
import { batchSize, columnsSetting, dataField, modelField, optimizerSettings, positiveInt } from './schema-parts';

export const ppoSchema = z
  .object({
    prompts: dataField(
      'Prompts: records with {"prompt": text or chat messages}, or the prompts of SFT records (messages, Alpaca, ShareGPT)',
    ),
    columns: columnsSetting,
    sft_model: modelField('Policy and reference: an SFT checkpoint (default: the experiment model).'),
    reward_model: modelField('A reward-model checkpoint: scores responses and initialises the value model.'),
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

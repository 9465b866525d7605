/** The "dpo" section of the experiment config: TRL's DPOConfig names and defaults. */
import { z } from 'zod';
import { peftSchema } from './peft-schema';
import {
  batchSize,
  columnsSetting,
  dataField,
  evalFraction,
  modelField,
  optimizerSettings,
  positiveInt,
  preferenceSteps,
} from './schema-parts';

export const dpoSchema = z
  .object({
    data: dataField(
      "Preference pairs: TRL's preference records ({prompt, chosen, rejected}, text or chat messages, or chosen/rejected with an implicit prompt, as in HH-RLHF), the labeling store, or Alpaca/ShareGPT preference records",
    ),
    columns: columnsSetting,
    model: modelField(
      'The policy to train and the frozen reference: an SFT checkpoint (default: the experiment model).',
    ),
    beta: z
      .number()
      .positive()
      .default(0.1)
      .describe('How far the policy may move from the reference (the KL weight).'),
    loss_type: z.enum(['sigmoid', 'ipo', 'hinge', 'robust']).default('sigmoid'),
    label_smoothing: z
      .number()
      .min(0)
      .lt(0.5)
      .default(0)
      .describe('The share of labels assumed flipped (cDPO for "sigmoid", and "robust").'),
    rpo_alpha: z
      .number()
      .positive()
      .optional()
      .describe("Adds this times the chosen responses' NLL to the loss (RPO)."),
    max_prompt_length: positiveInt.default(512).describe('Longest prompt in tokens; longer prompts keep their end.'),
    max_completion_length: positiveInt
      .optional()
      .describe('Longest response (with its EOS) in tokens; longer responses keep their start.'),
    max_length: positiveInt
      .default(1024)
      .describe('Longest prompt + response in tokens (at most the model context); see truncation_mode.'),
    truncation_mode: z
      .enum(['keep_end', 'keep_start'])
      .default('keep_end')
      .describe('Which end of a sequence longer than max_length is kept.'),
    eval_fraction: evalFraction.default(0.1),
    per_device_train_batch_size: batchSize
      .default(8)
      .describe('Pairs per step (each step reads twice as many sequences).'),
    gradient_accumulation_steps: positiveInt.default(1),
    ...optimizerSettings({
      learning_rate: 1e-6,
      lr_scheduler_type: 'linear',
      warmup_steps: 0,
      min_lr_ratio: 0,
      weight_decay: 0,
    }),
    ...preferenceSteps,
    sample_prompts: z
      .array(z.string().min(1))
      .default([])
      .describe('Prompts to sample before and after training (default: a few held-out prompts).'),
    peft: peftSchema.optional(),
  })
  .strict();

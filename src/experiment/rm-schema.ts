/** The "rm" section of the experiment config: TRL's RewardConfig names and defaults. */
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

export const rmSchema = z
  .object({
    data: dataField(
      "Preference pairs in TRL's preference format ({prompt, chosen, rejected}, or {chosen, rejected} with an implicit prompt), e.g. the labeling store, or Alpaca/ShareGPT records with chosen and rejected",
    ),
    columns: columnsSetting,
    model: modelField(
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
    ...preferenceSteps,
    center_rewards_coefficient: z
      .number()
      .positive()
      .optional()
      .describe('Adds this times mean((r_chosen + r_rejected)²) to the loss, keeping rewards centred on 0.'),
    peft: peftSchema.optional(),
  })
  .strict();

/** The "sft" section of the experiment config: TRL's SFTConfig names and defaults. */
import { z } from 'zod';
import { peftSchema } from './peft-schema';
import { batchSize, columnsSetting, dataField, evalFraction, optimizerSettings, positiveInt } from './schema-parts';

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

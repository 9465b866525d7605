/** The "peft" section a training stage may have: LoRA adapters with PEFT's LoraConfig names. */
import { z } from 'zod';
import { positiveInt } from './schema-parts';

/**
 * LoRA adapters (PEFT's LoraConfig names): the model's weights stay frozen, and only low-rank paths
 * on the chosen projections (and modules_to_save) train; the run saves a PEFT adapter folder.
 * A stage opts in with `peft: peftSchema.optional()`.
 */
export const peftSchema = z
  .object({
    r: positiveInt.default(8).describe("The adapters' rank."),
    lora_alpha: z.number().positive().default(8).describe('Scales the low-rank path by lora_alpha / r.'),
    lora_dropout: z
      .number()
      .refine((v) => v === 0, 'only 0 is supported: training computes without dropout')
      .default(0),
    target_modules: z
      .union([z.array(z.string().min(1)).min(1), z.string().min(1)])
      .default('all-linear')
      .describe(
        'Projections to adapt: module names matched as PEFT does (whole or as the last parts, e.g. "c_attn", "q_proj"), a regex matched in full, or "all-linear" (every projection but the output head).',
      ),
    modules_to_save: z
      .array(z.string().min(1))
      .default([])
      .describe('Modules trained in full and saved with the adapter (a reward model\'s "score" always is).'),
    use_rslora: z.boolean().default(false).describe('Scale by lora_alpha / sqrt(r) (rank-stabilised LoRA).'),
  })
  .strict()
  .describe('Train LoRA adapters instead of the whole model, saved as a PEFT adapter folder.');

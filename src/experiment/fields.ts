/** Field types and groups that several stage sections of the experiment config share. */
import { z } from 'zod';

export const positiveInt = z.number().int().positive();
/** Sequences per step. 2^20 of even one token each need over 200 GB for GPT-2's logits alone. */
export const batchSize = positiveInt.max(
  2 ** 20,
  'must be at most 1048576 (2^20); a batch that large cannot fit in memory',
);
export const fraction = z.number().min(0).max(1);
/** At least one example is always left to train on, so a share of 1 is not allowed. */
export const evalFraction = z
  .number()
  .min(0)
  .lt(1, 'must be below 1: it is the share held out for evaluation, and the rest is what trains')
  .describe('Share of the data held out for evaluation, in [0, 1).');

/** The optimizer's settings every training stage has (TRL's names), with the stage's defaults. */
export function optimizerSettings(d: {
  learning_rate: number;
  lr_scheduler_type: 'cosine' | 'linear';
  warmup_steps: number;
  min_lr_ratio: number;
  weight_decay: number;
}) {
  return {
    learning_rate: z.number().positive().default(d.learning_rate),
    lr_scheduler_type: z.enum(['cosine', 'linear', 'constant']).default(d.lr_scheduler_type),
    warmup_steps: z.number().int().min(0).default(d.warmup_steps),
    min_lr_ratio: fraction.default(d.min_lr_ratio),
    weight_decay: z.number().min(0).default(d.weight_decay),
    max_grad_norm: z.number().positive().default(1),
  };
}

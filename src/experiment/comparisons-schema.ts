/** The "comparisons" section of the experiment config: sampling pairs of responses into the labeling queue. */
import { z } from 'zod';
import { columnsSetting, dataField, modelField, positiveInt } from './schema-parts';

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
    model: modelField(
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

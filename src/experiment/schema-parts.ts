/** The pieces the stage sections of the experiment config share: data fields, counts, shares, optimizer settings. */
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

/** The step counts of the stages that train on preference pairs (reward model, DPO). */
export const preferenceSteps = {
  max_steps: positiveInt
    .default(200)
    .describe('Training steps; an epoch is (training pairs) / per_device_train_batch_size steps.'),
  logging_steps: positiveInt.default(10),
  eval_steps: positiveInt.default(50),
  save_steps: positiveInt.default(100),
};

const DATA_SOURCES =
  'a file (JSONL, JSON array, CSV, TSV or Parquet), a folder laid out as a Hub dataset repo, or a Hub dataset ' +
  '"hf://datasets/org/name"; a folder or Hub dataset takes "?config=NAME&split=NAME&revision=REV" (default: config "default", split "train", revision "main")';

/** A stage's data field: where its records are (see src/data/formats/source.ts). */
export function dataField(what: string) {
  return z.string().min(1).describe(`${what}: ${DATA_SOURCES}.`);
}

/** A stage's model field: a checkpoint folder, a preset or a Hub repo id, optional (each stage has its default). */
export function modelField(what: string) {
  return z.string().min(1).optional().describe(what);
}

/** Renames of a stage's data fields, e.g. {"prompt": "question", "completion": "answer"}. */
export const columnsSetting = z
  .record(z.string().min(1), z.string().min(1))
  .optional()
  .describe(
    'Field renames for the data: the field a format reads → the column of the data that holds it, e.g. {"prompt": "question", "completion": "answer"}; CSV and TSV files need it unless their header names the fields.',
  );

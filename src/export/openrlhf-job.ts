/**
 * What every OpenRLHF job of an export shares: its prompts as train_ppo_ray reads them, how many
 * passes over them a run makes, and the job a section becomes.
 */
import { ColumnMapping } from '../data/formats/read';
import { parseDataSpec } from '../data/formats/source';
import { Unmapped } from './bundle';
import { Rule } from './mapping';
import { promptData } from './trl-data';

/** A section's job for openrlhf.cli.train_ppo_ray. */
export interface OpenRlhfJob {
  /** The section's own arguments (models, data, algorithm, optimizer). */
  args: Record<string, unknown>;
  /** The roles that get GPUs besides the actor ("ref", "reward", "critic"). */
  roles: string[];
  unmapped: Unmapped[];
  /** What a person must do before launching it. */
  problems: string[];
  /** Files the job reads besides its prompts, by relative path. */
  files: Map<string, string>;
}

export interface ExportedPrompts {
  /** The prompt_data argument: the export's file, or a Hub dataset's repo id. */
  data: string;
  split?: string;
  /** JSONL text of {"prompt"} records, for a local source. */
  text?: string;
  /** The prompts, when known (a local source). */
  count?: number;
  chat: boolean;
  inputKey: string;
  /** The columns besides the prompt, when known (a local source). */
  columns: string[];
}

/** The prompts of `source` (any format the stage reads) as {"prompt"} records, or a Hub dataset as it is. */
export async function exportedPrompts(
  source: string,
  columns: ColumnMapping | undefined,
  file: string,
): Promise<ExportedPrompts> {
  const data = await promptData(source, columns, file);
  if ('hub' in data) {
    const spec = parseDataSpec(data.hub);
    return { data: spec.path, split: spec.split, chat: false, inputKey: columns?.prompt ?? 'prompt', columns: [] };
  }
  return {
    data: data.file,
    text: data.text,
    count: data.count,
    chat: data.chat ?? false,
    inputKey: 'prompt',
    columns: data.columns ?? [],
  };
}

/** num_episodes (passes over the prompts) and max_samples for a run that draws `episodes` prompts of `prompts`. */
export function episodeArgs(episodes: number, prompts: number | undefined): Record<string, number> {
  if (prompts === undefined) return { num_episodes: 1, max_samples: episodes };
  return {
    num_episodes: Math.max(1, Math.ceil(episodes / Math.max(1, prompts))),
    max_samples: Math.min(prompts, episodes),
  };
}

/** The job's prompt arguments. */
export function promptArgs(prompts: ExportedPrompts): Record<string, unknown> {
  return {
    prompt_data: prompts.data,
    prompt_split: prompts.split,
    input_key: prompts.inputKey,
    apply_chat_template: prompts.chat,
  };
}

/**
 * The rules every online section shares: the data (the job's own arguments), the schedule over
 * `updates` optimizer steps, checkpoints and logs.
 */
export function loopRules(
  s: { lr_scheduler_type: string; min_lr_ratio: number },
  updates: number,
): Record<string, Rule> {
  return {
    prompts: 'script',
    columns: 'script',
    peft: 'script', // ./peft.ts
    lr_scheduler_type: (type: string) => ({
      lr_scheduler: type === 'cosine' ? 'cosine_with_min_lr' : type === 'constant' ? 'constant_with_warmup' : type,
    }),
    min_lr_ratio:
      s.lr_scheduler_type === 'cosine' && s.min_lr_ratio !== 0.1
        ? { unmapped: "OpenRLHF's cosine_with_min_lr floors at 0.1 × the learning rate" }
        : () => ({}),
    warmup_steps: (steps: number) => ({ lr_warmup_ratio: updates > 0 ? Math.min(1, steps / updates) : 0 }),
    weight_decay: 'l2',
    max_grad_norm: 'max_norm',
    logging_steps: 'logging_steps',
    save_steps: 'save_steps',
    sample_steps: { unmapped: 'OpenRLHF logs no sample tables' },
  };
}

/**
 * The pieces every exported TRL script shares: the cluster it is laid out for, the optimizer and
 * loop settings under TrainingArguments' names, and the lines that load the model.
 */
import { Unmapped } from './bundle';
import { ModelChoice, Rule } from './mapping';
import { pyComment, pyLiteral } from './python';

export interface ClusterLayout {
  /** GPUs per machine. */
  gpus: number;
  /** Machines. */
  nodes: number;
  /** DeepSpeed ZeRO stage (accelerate's DeepSpeed plugin), or none for plain data parallelism. */
  zero?: 2 | 3;
}

/** The optimizer and loop settings every training stage shares, as TrainingArguments names them. */
export function trainingRules(layout: ClusterLayout): Record<string, Rule> {
  const processes = layout.gpus * layout.nodes;
  return {
    learning_rate: 'learning_rate',
    warmup_steps: 'warmup_steps',
    weight_decay: 'weight_decay',
    max_grad_norm: 'max_grad_norm',
    gradient_accumulation_steps: 'gradient_accumulation_steps',
    max_steps: 'max_steps',
    logging_steps: 'logging_steps',
    save_steps: 'save_steps',
    eval_steps: (steps: number, s) => (s.eval_fraction ? { eval_strategy: 'steps', eval_steps: steps } : {}),
    per_device_train_batch_size: (batch: number) => ({
      // The same global batch over all processes where it divides evenly.
      per_device_train_batch_size: batch % processes === 0 ? batch / processes : batch,
    }),
    lr_scheduler_type: (type: string, s) => scheduler(type, s.min_lr_ratio as number),
    min_lr_ratio: () => ({}), // with lr_scheduler_type
    eval_fraction: 'script',
    data: 'script',
    columns: 'script',
    model: 'script',
    peft: 'script', // LoraConfig, ./peft.ts
  };
}

/** TRL's schedule for ours: cosine to a floor is transformers' cosine_with_min_lr. */
function scheduler(type: string, minLrRatio: number): Record<string, unknown> {
  if (type === 'cosine' && minLrRatio > 0)
    return { lr_scheduler_type: 'cosine_with_min_lr', lr_scheduler_kwargs: { min_lr_rate: minLrRatio } };
  if (type === 'constant') return { lr_scheduler_type: 'constant_with_warmup' };
  return { lr_scheduler_type: type };
}

/** The settings a linear schedule to a floor cannot carry (transformers' linear decays to 0). */
export function floorUnmapped(section: string, s: { lr_scheduler_type: string; min_lr_ratio: number }): Unmapped[] {
  return s.lr_scheduler_type === 'linear' && s.min_lr_ratio > 0
    ? [{ field: `${section}.min_lr_ratio`, value: s.min_lr_ratio, why: "transformers' linear schedule decays to 0" }]
    : [];
}

export interface StageScript {
  file: string;
  source: string;
  unmapped: Unmapped[];
  /** What a person must do before launching it, for the README. */
  problems: string[];
}

/** The lines that load the model and tokenizer, stopping with the reason when the model needs a person's choice. */
export function modelLines(model: ModelChoice, loader: string, extra = ''): string {
  const lines = [`MODEL = ${pyLiteral(model.problem && !model.name ? null : model.name)}`];
  lines.push(`REVISION = ${pyLiteral(model.revision && model.revision !== 'main' ? model.revision : null)}`);
  if (model.problem) lines.push(pyComment([model.problem]));
  lines.push('if MODEL is None:', `    raise SystemExit(${pyLiteral(model.problem ?? 'set MODEL')})`);
  lines.push(`model = ${loader}.from_pretrained(MODEL, revision=REVISION${extra})`);
  lines.push('tokenizer = AutoTokenizer.from_pretrained(MODEL, revision=REVISION)');
  return lines.join('\n');
}

export function script(doc: string, imports: string[], body: string[]): string {
  return [`"""${doc}"""`, ...imports, '', ...body, ''].join('\n');
}

export function launchDoc(stage: string, file: string): string {
  return `${stage}, exported from an RLHF Studio experiment.\n\nLaunch: accelerate launch --config_file accelerate_config.yaml ${file}\n`;
}

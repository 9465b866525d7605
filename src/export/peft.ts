/**
 * A stage's `peft` section in the exports: PEFT's LoraConfig for a TRL trainer's peft_config (the
 * same names, so the adapter TRL trains is the one trained here), or OpenRLHF's LoRA arguments.
 */
import { PeftSettings } from '../experiment/config';
import { Unmapped } from './bundle';
import { Mapped, mapSettings } from './mapping';
import { pyCall } from './python';

/** The lines a TRL script gains for a peft section, and the trainer's keyword argument. */
export interface LoraScript {
  imports: string[];
  lines: string[];
  /** ", peft_config=peft_config", or "" without a peft section. */
  trainerArg: string;
  unmapped: Unmapped[];
}

const SAME_NAMES = ['r', 'lora_alpha', 'lora_dropout', 'target_modules', 'modules_to_save', 'use_rslora'];

/**
 * `peft_config = LoraConfig(...)` of a stage's peft section (at `section`, e.g. "dpo"), for a causal
 * LM or, for a reward model, a sequence classifier (whose score head PEFT trains and saves, as here).
 */
export function loraScript(
  section: string,
  peft: PeftSettings | undefined,
  taskType: 'CAUSAL_LM' | 'SEQ_CLS',
): LoraScript {
  if (!peft) return { imports: [], lines: [], trainerArg: '', unmapped: [] };
  const rules = Object.fromEntries(SAME_NAMES.map((name) => [name, name]));
  const { args, unmapped } = mapSettings(`${section}.peft`, peft, rules);
  return {
    imports: ['from peft import LoraConfig'],
    lines: [`peft_config = ${pyCall('LoraConfig', { ...args, task_type: taskType })}`],
    trainerArg: ', peft_config=peft_config',
    unmapped,
  };
}

/**
 * A peft section as OpenRLHF's train_ppo_ray arguments (which adapt actor and critic alike), and
 * what they cannot say: a fractional lora_alpha, a regex of modules, modules_to_save, rsLoRA.
 */
export function openRlhfLora(section: string, peft: PeftSettings | undefined): Mapped {
  if (!peft) return { args: {}, unmapped: [] };
  const { target_modules: target } = peft;
  return mapSettings(`${section}.peft`, peft, {
    r: 'lora_rank',
    lora_alpha: Number.isInteger(peft.lora_alpha)
      ? 'lora_alpha'
      : { unmapped: "OpenRLHF's --lora_alpha is an integer" },
    lora_dropout: 'lora_dropout',
    // A list of module names, "all-linear" by default.
    target_modules: Array.isArray(target)
      ? 'target_modules'
      : target === 'all-linear'
        ? 'script'
        : { unmapped: "OpenRLHF's --target_modules takes module names, not a regex" },
    modules_to_save: peft.modules_to_save.length
      ? { unmapped: 'OpenRLHF has no argument for modules trained in full beside the adapters' }
      : 'script',
    use_rslora: peft.use_rslora
      ? { unmapped: 'OpenRLHF scales its adapters by lora_alpha / r, without rank-stabilised scaling' }
      : 'script',
  });
}

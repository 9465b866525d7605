/** A small LoRA configuration on every linear layer, as the adapter tests use it. */
import type { LoraConfig } from '../../src/model/lora';

export const LORA: LoraConfig = {
  r: 4,
  lora_alpha: 8,
  lora_dropout: 0,
  target_modules: 'all-linear',
  modules_to_save: [],
  use_rslora: false,
};

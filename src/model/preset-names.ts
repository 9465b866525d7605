/**
 * The names of the model presets (./config.ts holds their sizes). Nothing imported, so the
 * extension host can tell a preset from a model folder without loading model code.
 */
export const PRESET_NAMES = [
  'tiny',
  'gpt2',
  'gpt2-medium',
  'tiny-llama',
  'smollm2-135m',
  'smollm2-360m',
  'qwen2.5-0.5b',
  'qwen3-0.6b',
  'llama-3.2-1b',
] as const;

export type PresetName = (typeof PRESET_NAMES)[number];

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name);
}

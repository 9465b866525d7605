/**
 * Merging an adapter: a PEFT adapter folder and its base become one full Hugging Face checkpoint,
 * W + scaling · B A in every adapted projection (PEFT's merge_and_unload().save_pretrained()),
 * with the base's tokenizer files and, for a reward model, its normalisation in config.json.
 */
import * as path from 'path';
import { isAdapterFolder } from '../model/adapter-files';
import { ADAPTER_FILES } from '../model/checkpoint-layout';
import { saveCheckpoint } from '../model/checkpoint';
import { Head } from '../model/config';
import { mergedModel } from './adapters';
import { loadModelFolder } from './model-state';
import { NORMALIZATION_KEY, RewardNormalization, withNormalization } from './scorer';

/** Writes `adapterDir` merged into its base as a model folder at `outDir`; returns the model's head. */
export function mergeAdapterFolder(adapterDir: string, outDir: string): { head: Head } {
  const dir = path.resolve(adapterDir);
  if (!isAdapterFolder(dir)) throw new Error(`${dir}: not a PEFT adapter folder (it has no ${ADAPTER_FILES.config})`);
  const loaded = loadModelFolder(dir);
  const normalization = loaded.checkpoint?.trainerState?.[NORMALIZATION_KEY] as RewardNormalization | undefined;
  const { config, head, params, dtype } = mergedModel(loaded);
  saveCheckpoint(path.resolve(outDir), {
    config: head === 'score' && normalization ? withNormalization(config, normalization) : config,
    params,
    dtype,
    source: dir,
  });
  return { head };
}

/**
 * The Hub models and datasets a stage loads, fetched into the Hugging Face cache before it starts:
 * each model field that names a Hub repo becomes the repo's snapshot folder, each data field that
 * names a Hub dataset its snapshot folder (with its config and split). Downloads report `download`
 * events, and the run's Stop ends them (what arrived is resumed by the next run).
 */
import { Experiment } from '../experiment/config';
import { resolveDataSpec } from '../hub/datasets';
import { ResolveOptions, resolveModelSpec } from '../hub/resolve';
import { ExperimentStage } from '../protocol/runner';
import type { StageContext } from './stages';

export function hubOptions({ emit, signal }: StageContext): ResolveOptions {
  return {
    signal,
    onProgress: (p) => emit({ type: 'download', ...p }),
    log: (message) => emit({ type: 'log', level: 'info', message }),
  };
}

/** Resolves the model fields `stage` loads (after the unset ones were filled from earlier stages). */
export async function fetchHubModels(exp: Experiment, stage: ExperimentStage, resuming: boolean, ctx: StageContext) {
  const resolve = (spec: string) => resolveModelSpec(spec, hubOptions(ctx));
  const { comparisons: c, rm, ppo } = exp;
  if (stage === 'sft' && !resuming) exp.model = await resolve(exp.model);
  if (stage === 'comparisons' && c) c.model = await resolve(c.model ?? exp.model);
  if (stage === 'rm' && rm && !resuming) rm.model = await resolve(rm.model ?? exp.model);
  if (stage === 'ppo' && ppo) {
    ppo.sft_model = await resolve(ppo.sft_model ?? exp.model);
    if (ppo.reward_model) ppo.reward_model = await resolve(ppo.reward_model);
  }
}

/** Resolves the data fields `stage` reads (the reward model also reads the SFT data, for its normalisation). */
export async function fetchHubData(exp: Experiment, stage: ExperimentStage, ctx: StageContext) {
  const resolve = (spec: string) => resolveDataSpec(spec, hubOptions(ctx));
  const { sft, comparisons: c, rm, ppo } = exp;
  if (sft && (stage === 'sft' || stage === 'rm')) sft.data = await resolve(sft.data);
  if (stage === 'comparisons' && c) c.prompts = await resolve(c.prompts);
  if (stage === 'rm' && rm) rm.data = await resolve(rm.data);
  if (stage === 'ppo' && ppo) ppo.prompts = await resolve(ppo.prompts);
}

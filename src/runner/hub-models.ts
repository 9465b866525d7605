/**
 * The Hub models a stage loads, fetched into the Hugging Face cache before it starts: each model
 * field that names a Hub repo becomes the repo's snapshot folder. Downloads report `download`
 * events, and the run's Stop ends them (what arrived is resumed by the next run).
 */
import { Experiment } from '../experiment/config';
import { isRewardFuncFile } from '../experiment/group-rl';
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
  const group = (stage === 'grpo' || stage === 'rloo') && exp[stage];
  if (group) {
    group.model = await resolve(group.model ?? exp.model);
    for (const [i, f] of group.reward_funcs.entries())
      if (!isRewardFuncFile(f)) group.reward_funcs[i] = await resolve(f);
  }
}

/**
 * The model that scores an experiment's labeling queue: the final model of its newest finished
 * reward-model or DPO run (a DPO policy scores by its implicit reward), with the margins cache in
 * that run's folder and the run's held-out accuracy on the labels. No `vscode` import, so it is
 * tested on a real runs folder.
 */
import * as path from 'path';
import { MARGINS_FILE } from '../../data/margins';
import { StageModels } from '../../protocol/runner';
import { RunRegistry, runTitle } from '../../runs/registry';

/** The stages whose models score pairs, and the metric of each that is its held-out accuracy (TRL's names). */
const HELD_OUT_ACCURACY = { rm: 'eval_accuracy', dpo: 'eval_rewards/accuracies' } as const;

export interface ScoringModel {
  /** The run, as the Runs view calls it. */
  name: string;
  stage: keyof typeof HELD_OUT_ACCURACY;
  /** Its model folder: what scores, and the cache's key. */
  model: string;
  /** margins.jsonl in the run folder. */
  cache: string;
  /** The run's experiment file, and the earlier stages' models it started with (a DPO run's reference). */
  configFile: string;
  models?: StageModels;
  /** The run's last held-out accuracy, when it evaluated. */
  accuracy?: number;
}

export function scoringModel(registry: RunRegistry, configFile: string): ScoringModel | undefined {
  const run = registry
    .list()
    .find(
      (r) =>
        (r.stage === 'rm' || r.stage === 'dpo') &&
        r.status === 'finished' &&
        r.configFile === configFile &&
        registry.modelDir(r.id),
    );
  if (!run) return undefined;
  const stage = run.stage as ScoringModel['stage'];
  const accuracy = run.metrics[HELD_OUT_ACCURACY[stage]];
  return {
    name: runTitle(run),
    stage,
    model: registry.modelDir(run.id)!,
    cache: path.join(registry.dir(run.id), MARGINS_FILE),
    configFile,
    ...(run.models && { models: run.models }),
    ...(typeof accuracy === 'number' && accuracy >= 0 && accuracy <= 1 && { accuracy }),
  };
}

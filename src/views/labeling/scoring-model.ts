/**
 * The model that scores an experiment's labeling queue: the final model of its newest finished
 * reward-model run, with the margins cache in that run's folder and the run's held-out accuracy.
 * No `vscode` import, so it is tested on a real runs folder.
 */
import * as path from 'path';
import { MARGINS_FILE } from '../../data/margins';
import { RunRegistry, runTitle } from '../../runs/registry';

export interface ScoringModel {
  /** The run, as the Runs view calls it. */
  name: string;
  /** Its model folder: what scores, and the cache's key. */
  model: string;
  /** margins.jsonl in the run folder. */
  cache: string;
  /** The run's last held-out accuracy (TRL's eval_accuracy), when it evaluated. */
  accuracy?: number;
}

export function scoringModel(registry: RunRegistry, configFile: string): ScoringModel | undefined {
  const run = registry
    .list()
    .find((r) => r.stage === 'rm' && r.status === 'finished' && r.configFile === configFile && registry.modelDir(r.id));
  if (!run) return undefined;
  const accuracy = run.metrics.eval_accuracy;
  return {
    name: runTitle(run),
    model: registry.modelDir(run.id)!,
    cache: path.join(registry.dir(run.id), MARGINS_FILE),
    ...(typeof accuracy === 'number' && accuracy >= 0 && accuracy <= 1 && { accuracy }),
  };
}

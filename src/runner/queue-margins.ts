/** The training process's side of `score-queue`: a reward model's or DPO policy's margins on a labeling queue. */
import * as path from 'path';
import { ScoreQueueCommand } from '../protocol/runner';
import { loadExperiment } from '../experiment/config';
import { DpoMarginSettings } from '../train/dpo-margins';
import { scoreQueueMargins } from '../train/queue-margins';
import { StageContext } from './stages';

export async function runQueueMargins(command: ScoreQueueCommand, { emit, signal }: StageContext): Promise<void> {
  const say = (message: string) => emit({ type: 'log', level: 'info', message });
  const summary = await scoreQueueMargins({
    model: command.model,
    queue: command.queue,
    cache: command.cache,
    dpo: command.dpo && dpoMarginSettings(command.model, command.dpo),
    runtime: { ...command.runtime, log: say },
    signal,
    onProgress: (done, total) => emit({ type: 'progress', stage: 'margins', step: done, total }),
  });
  say(`${summary.scored} pairs of ${path.basename(command.queue)} scored, ${summary.cached} read from the cache`);
  if (summary.skipped)
    emit({
      type: 'log',
      level: 'warn',
      message: `${summary.skipped} pairs are longer than the model reads and have no margin`,
    });
  emit({ type: 'done', stage: 'margins', step: summary.scored, outputDir: command.cache, stopped: summary.stopped });
}

/**
 * The experiment's dpo section as the run used it: its reference (dpo.model, else the SFT model the
 * run started from), β, loss and truncation.
 */
function dpoMarginSettings(model: string, dpo: NonNullable<ScoreQueueCommand['dpo']>): DpoMarginSettings {
  const exp = loadExperiment(dpo.configFile, dpo.workspaceFolder);
  const s = exp.dpo;
  if (!s) throw new Error(`${dpo.configFile} has no "dpo" section to score ${model} with`);
  return {
    reference: s.model ?? dpo.models?.sft ?? exp.model,
    seed: exp.seed,
    size: exp.model_size,
    section: s,
    chatTemplateKwargs: exp.chat_template_kwargs,
  };
}

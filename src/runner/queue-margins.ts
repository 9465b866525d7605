/** The training process's side of `score-queue`: a reward model's margins on a labeling queue. */
import * as path from 'path';
import { ScoreQueueCommand } from '../protocol/runner';
import { scoreQueueMargins } from '../train/queue-margins';
import { StageContext } from './stages';

export async function runQueueMargins(command: ScoreQueueCommand, { emit, signal }: StageContext): Promise<void> {
  const say = (message: string) => emit({ type: 'log', level: 'info', message });
  const summary = await scoreQueueMargins({
    model: command.model,
    queue: command.queue,
    cache: command.cache,
    runtime: { ...command.runtime, log: say },
    signal,
    onProgress: (done, total) => emit({ type: 'progress', stage: 'margins', step: done, total }),
  });
  say(`${summary.scored} pairs of ${path.basename(command.queue)} scored, ${summary.cached} read from the cache`);
  if (summary.tooLong)
    emit({
      type: 'log',
      level: 'warn',
      message: `${summary.tooLong} pairs are longer than the reward model reads and have no margin`,
    });
  emit({ type: 'done', stage: 'margins', step: summary.scored, outputDir: command.cache, stopped: summary.stopped });
}

/**
 * The labeling queues of a workspace: the `comparisons` sections of its experiment files, with
 * queue and preferences paths made absolute by loadExperiment.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadExperiment } from '../../experiment/config';

export interface Queue {
  /** The experiment file: names the queue in messages and in the remembered selection. */
  key: string;
  name: string;
  queueFile: string;
  preferencesFile: string;
}

/** The queues of these experiment files, in the files' order; a file that does not load is reported and left out. */
export function queuesOf(experimentFiles: string[], report: (problem: string) => void): Queue[] {
  const queues: Queue[] = [];
  for (const file of experimentFiles) {
    try {
      const experiment = loadExperiment(file);
      if (!experiment.comparisons) continue;
      const { queue, preferences } = experiment.comparisons;
      queues.push({ key: file, name: experiment.name, queueFile: queue, preferencesFile: preferences });
    } catch (err) {
      report((err as Error).message);
    }
  }
  return queues;
}

/** The labeling guidelines beside a queue file, as Markdown; undefined when there are none. */
export function readGuidelines(queueFile: string): string | undefined {
  try {
    return fs.readFileSync(path.join(path.dirname(queueFile), 'guidelines.md'), 'utf8');
  } catch {
    return undefined;
  }
}

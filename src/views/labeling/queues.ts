/**
 * The labeling queues of a workspace: the `comparisons` sections of its experiment files, with
 * queue and preferences paths made absolute, and inside the workspace folder, by loadExperiment.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadComparisons } from '../../experiment/comparisons-section';
import { isInsideWorkspace, workspacePathProblem } from '../../util/workspace-path';
import { checksFileOf } from '../../data/checks';

/** An experiment file (*.rlhf.json) and the workspace folder holding it. */
export interface ExperimentFile {
  file: string;
  workspaceFolder: string;
}

export interface Queue {
  /** The experiment file: names the queue in messages and in the remembered selection. */
  key: string;
  name: string;
  queueFile: string;
  preferencesFile: string;
  /** comparisons.guidelines, else guidelines.md beside the queue file. */
  guidelinesFile: string;
  workspaceFolder: string;
}

/**
 * The queues of these experiment files, in the files' order. A file with a mistake outside its
 * `comparisons` section keeps its queue, and its error is reported. A file whose queue cannot be
 * used (one that names a file outside its workspace folder, say) is reported and left out, so
 * nothing it names is read or written.
 */
export function queuesOf(experiments: ExperimentFile[], report: (problem: string) => void): Queue[] {
  const queues: Queue[] = [];
  for (const { file, workspaceFolder } of experiments) {
    try {
      const { name, comparisons, problem } = loadComparisons(file, workspaceFolder);
      if (problem) report(problem);
      if (!comparisons) continue;
      const { queue: queueFile, preferences: preferencesFile } = comparisons;
      const guidelinesFile = comparisons.guidelines ?? path.join(path.dirname(queueFile), 'guidelines.md');
      queues.push({ key: file, name, queueFile, preferencesFile, guidelinesFile, workspaceFolder });
    } catch (err) {
      report((err as Error).message);
    }
  }
  return queues;
}

/**
 * The queue's files that lead outside its workspace folder now, as problems naming the experiment
 * file and the field. Checked again before each read and write: a symlink may have been made since
 * the experiment was loaded.
 */
export function queuePathProblems(queue: Queue): string[] {
  const files: [string, string][] = [
    ['comparisons.queue', queue.queueFile],
    ['comparisons.preferences', queue.preferencesFile],
    ['comparisons.preferences (its quality checks)', checksFileOf(queue.preferencesFile)],
  ];
  return files.flatMap(([field, file]) => {
    const problem = workspacePathProblem(field, file, queue.workspaceFolder);
    return problem === undefined ? [] : [`${queue.key}: ${problem}`];
  });
}

/** The queue's guidelines; undefined when there are none, or the file leads outside the workspace. */
export function readGuidelines(queue: Queue): string | undefined {
  if (!isInsideWorkspace(queue.guidelinesFile, queue.workspaceFolder)) return undefined;
  try {
    return fs.readFileSync(queue.guidelinesFile, 'utf8');
  } catch {
    return undefined;
  }
}

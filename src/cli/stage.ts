/**
 * `rlhf <stage> <config>`: a stage run as VS Code runs it, recorded in the workspace's runs folder,
 * resumable, with its events printed.
 */
import * as path from 'path';
import { loadExperiment } from '../experiment/config';
import { incompleteCheckpoint } from '../model/checkpoint-layout';
import { ProviderChoice } from '../engine/runtime';
import { ExperimentStage, RunEvent } from '../protocol/runner';
import { stageRunners } from '../runner/stages';
import {
  NO_PROCESS,
  RunRecord,
  RunRegistry,
  checkResumable,
  findCheckpoints,
  liveProcess,
  recordEvent,
  runOfCheckpoint,
  skippedCheckpoints,
} from '../runs/registry';
import { STAGE_INFO } from '../shared/stages';
import { isInsideWorkspace } from '../util/workspace-path';
import { t } from '@vscode/l10n';
import { printEvent, stopOnInterrupt } from './output';
export function runsDir(name: string, stage: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return path.resolve('.rlhf', 'runs', `${stamp}-${name}-${stage}`);
}

export type StageOptions = {
  out?: string;
  resume?: string;
  steps?: number;
  provider?: ProviderChoice;
  workspace?: string;
};

/**
 * Runs a stage as the extension's training process does. The run is recorded in the runs folder
 * of the workspace folder (`.rlhf/runs/<id>/run.json`), so VS Code's Runs view and charts show it,
 * and the config's unset models are the experiment's earlier runs' models, as in VS Code. A resume
 * from a checkpoint of a recorded run goes on in that run's folder and record, with its models.
 * With --out the run goes to that folder instead, unrecorded.
 */
export async function stage(name: ExperimentStage, configFile: string, opts: StageOptions) {
  const config = path.resolve(configFile);
  const workspaceFolder = workspaceOf(config, opts);
  const experiment = loadExperiment(config, workspaceFolder); // a bad config stops here, before a run folder exists
  const resumeFrom = opts.resume && resumePoint(path.resolve(opts.resume), name);
  const resumed = resumeFrom ? runOfCheckpoint(resumeFrom) : undefined;
  const registry = resumed?.registry ?? new RunRegistry(path.join(workspaceFolder, '.rlhf', 'runs'));
  const models = resumed?.record.models ?? registry.stageModels(config);
  const record = opts.out
    ? undefined
    : resumed
      ? continuedRun(resumed.record, name, resumeFrom!)
      : registry.create({ name: experiment.name, stage: name, configFile: config });
  const outputDir = record ? registry.dir(record.id) : path.resolve(opts.out!);
  console.log(t('run directory: {0}', outputDir));
  const starting = {
    status: 'running',
    models,
    resumedFrom: resumeFrom,
    error: undefined,
    logTail: undefined,
  } as const;
  if (record) registry.save(Object.assign(record, starting, liveProcess(process.pid)));
  const emit = (e: RunEvent) => {
    printEvent(e);
    if (!record) return;
    if (e.type === 'done') {
      Object.assign(record, { status: e.stopped ? 'stopped' : 'finished', step: e.step }, NO_PROCESS);
    }
    if (recordEvent(record, e) || e.type === 'done') registry.save(record);
  };
  const command = {
    type: 'start' as const,
    stage: name,
    configFile: config,
    workspaceFolder,
    outputDir,
    resumeFrom,
    models,
    steps: opts.steps,
    runtime: { provider: opts.provider },
  };
  try {
    await stageRunners[name](command, { emit, signal: stopOnInterrupt() });
  } catch (e) {
    if (record) registry.save(Object.assign(record, { status: 'failed', error: (e as Error).message }, NO_PROCESS));
    throw e;
  }
}

/**
 * The checkpoint a resume starts from: the one named, or when that one is incomplete (a save cut
 * off by a kill), the newest complete one before it in the same folder, with a warning.
 */
function resumePoint(checkpoint: string, stage: ExperimentStage): string {
  const reason = incompleteCheckpoint(checkpoint, STAGE_INFO[stage].checkpointModels);
  const step = /^checkpoint-(\d+)$/.exec(path.basename(checkpoint))?.[1];
  if (!reason || step === undefined) return checkpoint; // the stage says what is wrong with any other folder
  const search = findCheckpoints(path.dirname(checkpoint), stage, Number(step) + 1);
  if (!search.latest)
    throw new Error(`cannot resume from ${checkpoint}: ${reason}, and no complete checkpoint precedes it`);
  for (const warning of skippedCheckpoints(search)) console.warn(t('warning: {0}', warning));
  return search.latest.path;
}

/**
 * The workspace folder: --workspace, else the current directory. The experiment file and every
 * file it names must be inside it, as in VS Code; its `.rlhf/runs` records the runs.
 */
function workspaceOf(config: string, opts: StageOptions): string {
  const workspace = path.resolve(opts.workspace ?? '.');
  if (isInsideWorkspace(config, workspace)) return workspace;
  const which = opts.workspace ? 'the --workspace folder' : 'the current directory';
  throw new Error(
    `${config} is outside ${which} (${workspace}): run rlhf in a folder that holds the experiment, or name one with --workspace`,
  );
}

/** The recorded run a resume goes on with: one of this stage that stopped or failed. */
function continuedRun(record: RunRecord, stage: ExperimentStage, checkpoint: string): RunRecord {
  if (record.stage !== stage) {
    const run = `${record.stage} run "${record.id}"`;
    throw new Error(`${checkpoint} is a checkpoint of ${run}; resume it with "rlhf ${record.stage}"`);
  }
  checkResumable(record);
  return record;
}

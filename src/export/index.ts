/**
 * Exports of an experiment to trainers that run beyond one machine: TRL with accelerate, OpenRLHF
 * on Ray. Shared by `rlhf export` and the palette's Export commands.
 */
import * as path from 'path';
import { loadExperiment } from '../experiment/config';
import { ExportBundle, writeBundle } from './bundle';
import { openRlhfExport } from './openrlhf';
import { trlExport } from './trl';
import { ClusterLayout } from './trl-script';

export const EXPORT_TARGETS = ['trl', 'openrlhf'] as const;
export type ExportTarget = (typeof EXPORT_TARGETS)[number];
export type { ClusterLayout };

export interface ExportRequest {
  target: ExportTarget;
  config: string;
  workspace: string;
  layout: ClusterLayout;
  /** The folder to write (it must not exist or be empty); default: .rlhf/exports/<time>-<name>-<target>. */
  out?: string;
}

/** Writes the export and says where, what launches it, and how many settings did not carry over. */
export async function exportExperiment(request: ExportRequest): Promise<{ dir: string; bundle: ExportBundle }> {
  const exp = loadExperiment(request.config, request.workspace);
  const bundle =
    request.target === 'trl' ? await trlExport(exp, request.layout) : await openRlhfExport(exp, request.layout);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = path.resolve(
    request.out ?? path.join(request.workspace, '.rlhf', 'exports', `${stamp}-${exp.name}-${request.target}`),
  );
  writeBundle(dir, bundle);
  return { dir, bundle };
}

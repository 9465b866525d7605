/**
 * Exports in tests: a test workspace's experiment exported to TRL or OpenRLHF, and the argument
 * names the generated scripts pass that the targets do not declare (a fixture list of their names).
 */
import * as fs from 'fs';
import * as path from 'path';
import { ExportTarget, exportExperiment } from '../../src/export';
import { kwargsOf } from './python-scripts';

/** The argument names of TRL's configs, PEFT's LoraConfig and OpenRLHF's train_ppo_ray, by name. */
const DECLARED = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'trainer-arguments.json'), 'utf8'),
) as Record<string, string[]>;

/** Exports the experiment of a workspace into its folder named after the target, for `gpus` GPUs a node. */
export async function exportTo(
  target: ExportTarget,
  { dir, config }: { dir: string; config: string },
  layout: { gpus: number; nodes?: number },
) {
  const out = path.join(dir, target);
  const { bundle } = await exportExperiment({
    target,
    config,
    workspace: dir,
    layout: { gpus: layout.gpus, nodes: layout.nodes ?? 1 },
    out,
  });
  return { out, bundle };
}

/** The names of `names` that `declaredBy` (a TRL config class, LoraConfig or train_ppo_ray) does not declare. */
export function undeclared(names: string[], declaredBy: string): string[] {
  return names.filter((n) => !DECLARED[declaredBy].includes(n));
}

/** The keyword arguments of `call(` … `)` in a generated Python script that `call` does not declare. */
export const undeclaredKwargs = (source: string, call: string) => undeclared(kwargsOf(source, call), call);

/** The `--name` arguments of a generated OpenRLHF launch script, in order. */
export const scriptArgs = (script: string) => [...script.matchAll(/^ {2}--(\w+)(?= |$)/gm)].map((m) => m[1]);

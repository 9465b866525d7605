/**
 * How an experiment's settings carry over to another trainer's arguments. A stage's settings go
 * through a table of rules, one per field; a field without a rule is listed as unmapped, so a
 * setting added later is never dropped silently.
 */
import { parseHubSpec } from '../hub/spec';
import { isPresetName } from '../model/preset-names';
import { Unmapped } from './bundle';

/** A field's rule: the target's name, a function giving the target's arguments, or why it has none. */
export type Rule =
  | string
  | ((value: never, settings: Record<string, unknown>) => Record<string, unknown>)
  | { unmapped: string }
  /** Carried by the script itself (data files, the model, the held-out split), or a default with nothing to carry. */
  | 'script';

export interface Mapped {
  args: Record<string, unknown>;
  unmapped: Unmapped[];
}

/** The target's arguments for `settings` (a config section named `section`) under `rules`. */
export function mapSettings(section: string, settings: object, rules: Record<string, Rule>): Mapped {
  const args: Record<string, unknown> = {};
  const unmapped: Unmapped[] = [];
  for (const [field, value] of Object.entries(settings)) {
    if (value === undefined) continue;
    const rule = rules[field];
    if (rule === 'script') continue;
    if (rule === undefined) unmapped.push({ field: `${section}.${field}`, value, why: 'no counterpart known' });
    else if (typeof rule === 'string') args[rule] = value;
    else if (typeof rule === 'function') Object.assign(args, rule(value as never, settings as Record<string, unknown>));
    else unmapped.push({ field: `${section}.${field}`, value, why: rule.unmapped });
  }
  return { args, unmapped };
}

/** A stage's output folder in the exported layout. */
export const outputDir = (stage: string) => `outputs/${stage}`;

/** A model as a script names it, and why a person must act on it before launching, if they must. */
export interface ModelChoice {
  /** A Hub repo id, a path, or undefined where there is nothing to name (a preset). */
  name?: string;
  revision?: string;
  problem?: string;
}

/**
 * A model field of a loaded experiment as the exported scripts name it: a Hub repo id (with its
 * revision), a local folder (the cluster needs a copy), an earlier exported stage's output, or a
 * preset, which exists only here (a randomly initialised model of a built-in size).
 */
export function modelChoice(field: string, value: string | undefined, earlier?: string): ModelChoice {
  if (value === undefined && earlier) return { name: outputDir(earlier) };
  if (value === undefined) return { problem: `${field} is not set` };
  if (isPresetName(value))
    return {
      problem: `${field} is the preset "${value}", a randomly initialised model that exists only in RLHF Studio: set MODEL to a Hub repo id or a model folder`,
    };
  const hub = parseHubSpec(value);
  if (hub) return { name: hub.repo, revision: hub.revision };
  return {
    name: value,
    problem: `${field} is the local folder ${value}: copy it to the machines that train, or change the path`,
  };
}

/**
 * Model specs that name a Hugging Face Hub repo: "org/name", or "org/name@revision" (a branch, tag
 * or commit). Free of the Hub client: the experiment config reads specs in the extension host too.
 */
import * as fs from 'fs';

export interface HubSpec {
  /** "org/name" */
  repo: string;
  /** A branch, tag or commit hash; "main" unless the spec names one. */
  revision: string;
}

export const DEFAULT_REVISION = 'main';

/** The Hub's repo ids: two names of letters, digits, "-", "_" and "." (no "--" or ".." inside). */
const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

/** The repo and revision of a spec shaped like a Hub repo id; undefined for anything else. */
export function parseHubSpec(spec: string): HubSpec | undefined {
  const at = spec.indexOf('@');
  const repo = at < 0 ? spec : spec.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : spec.slice(at + 1);
  if (!REPO_ID.test(repo) || /--|\.\./.test(repo) || repo.length > 96 || !revision) return undefined;
  return { repo, revision };
}

/**
 * The Hub repo a model spec names: one shaped like a repo id, when nothing exists at `localPath`
 * (the spec read as a path; an existing folder of that name wins).
 */
export function hubSpecOf(spec: string, localPath: string = spec): HubSpec | undefined {
  const hub = parseHubSpec(spec);
  return hub && !fs.existsSync(localPath) ? hub : undefined;
}

export function formatHubSpec({ repo, revision }: HubSpec): string {
  return revision === DEFAULT_REVISION ? repo : `${repo}@${revision}`;
}

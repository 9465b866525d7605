/**
 * Hub datasets ("hf://datasets/org/name?config=…&split=…&revision=…") into the Hugging Face cache,
 * as models are (./resolve.ts): only the files of the split asked for, found as the Hub lays them
 * out (src/data/formats/source.ts), under `datasets--org--name/snapshots/<commit>/`. A dataset
 * whose branch holds no files of the split in a readable layout is read from the Hub's Parquet
 * conversion, the `refs/convert/parquet` branch, unless a revision was named. A split already in
 * the cache is used without contacting the Hub; HF_HUB_OFFLINE uses the cache only.
 */
import * as fs from 'fs';
import * as path from 'path';
import {
  DataSpec,
  DEFAULT_CONFIG,
  DEFAULT_SPLIT,
  formatDataSpec,
  parseDataSpec,
  splitFiles,
} from '../data/formats/source';
import { RepoCache } from './cache';
import { HubError, explain } from './errors';
import { ResolveOptions, fetchFiles, openSession } from './resolve';
import { hubSettings } from './settings';
import { DEFAULT_REVISION, HubSpec, parseHubSpec } from './spec';

/** The Hub's Parquet conversion of every dataset. */
export const PARQUET_REVISION = 'refs/convert/parquet';

/**
 * A data field naming a Hub dataset becomes its snapshot folder in the cache, with the same
 * config and split (downloaded first where the cache lacks them); any other field is returned as
 * it is.
 */
export async function resolveDataSpec(spec: string, options: ResolveOptions = {}): Promise<string> {
  const data = parseDataSpec(spec);
  if (!data.hub) return spec;
  const hub = parseHubSpec(data.path);
  if (!hub || data.path.includes('@'))
    throw new HubError(`${spec}: not a Hub dataset id (hf://datasets/org/name, the revision as ?revision=REV)`);
  const snapshot = await datasetFromHub({ ...hub, revision: data.revision ?? DEFAULT_REVISION }, data, options);
  return formatDataSpec({ path: snapshot, hub: false, config: data.config, split: data.split });
}

async function datasetFromHub(hub: HubSpec, data: DataSpec, options: ResolveOptions): Promise<string> {
  const settings = options.settings ?? hubSettings();
  const cache = new RepoCache(settings.cacheDir, hub.repo, 'dataset');
  const name = `hf://datasets/${formatDataSpec({ ...data, hub: false })}`;
  const revisions = data.revision ? [hub.revision] : [hub.revision, PARQUET_REVISION];
  for (const revision of revisions) {
    const commit = cache.commitOf(revision);
    if (commit && hasSplit(cache.snapshot(commit), data)) {
      options.log?.(`${name}: from the Hugging Face cache, ${cache.snapshot(commit)}`);
      return cache.snapshot(commit);
    }
  }
  if (settings.offline)
    throw new HubError(
      `HF_HUB_OFFLINE is set and ${name} is not in the Hugging Face cache (${cache.folder}). Download it once with HF_HUB_OFFLINE unset.`,
    );
  const problems: string[] = [];
  for (const revision of revisions) {
    const at = { ...hub, revision };
    try {
      const session = await openSession(at, cache, settings, options.signal);
      const files = splitFiles([...session.files.keys()], data.config, data.split);
      if ('error' in files) {
        problems.push(`${revision}: ${files.error}`);
        continue;
      }
      await fetchFiles(session, files, options.onProgress);
      cache.writeRef(revision, session.commit);
      options.log?.(
        `${name}: ${files.length} file${files.length === 1 ? '' : 's'} downloaded into ${cache.snapshot(session.commit)}`,
      );
      return cache.snapshot(session.commit);
    } catch (e) {
      // A dataset without a Parquet conversion: the first revision's answer says what is wrong.
      if (revision === PARQUET_REVISION && problems.length) break;
      throw explain(e, at, settings);
    }
  }
  const split = `split "${data.split ?? DEFAULT_SPLIT}" of config "${data.config ?? DEFAULT_CONFIG}"`;
  throw new HubError(`${name}: no files of ${split} in a layout this reader knows (${problems.join('; ')})`);
}

/** Whether a snapshot holds the split's files (they are linked in only once all have arrived). */
function hasSplit(snapshot: string, data: DataSpec): boolean {
  if (!fs.existsSync(snapshot)) return false;
  const files = (fs.readdirSync(snapshot, { recursive: true }) as string[]).map((f) => f.split(path.sep).join('/'));
  return !('error' in splitFiles(files, data.config, data.split));
}

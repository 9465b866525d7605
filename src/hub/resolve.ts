/**
 * Model specs to local folders: a Hub repo id ("org/name", "org/name@revision") becomes its
 * snapshot folder in the Hugging Face cache, downloaded first unless the cache already holds it
 * (then no request is made). Anything else (a preset, a folder) is returned as it is.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ListFileEntry, datasetInfo, listFiles, modelInfo } from '@huggingface/hub';
import { RepoCache, RepoType } from './cache';
import { BlobJob, fetchBlob, heldBytes } from './download';
import { HubError, explain } from './errors';
import { CONFIG, METADATA_FILES, WEIGHTS, WEIGHTS_INDEX, missingModelFiles, shardsOf } from './model-files';
import { DownloadProgress, ProgressTracker } from './progress';
import { HubSettings, hubSettings } from './settings';
import { HubSpec, formatHubSpec, hubSpecOf } from './spec';

export interface ResolveOptions {
  /** Default: from the environment (HF_ENDPOINT, HF_HUB_CACHE, HF_HOME, HF_TOKEN, HF_HUB_OFFLINE). */
  settings?: HubSettings;
  /** Stops the download; what arrived is kept and resumed next time. */
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  log?: (message: string) => void;
}

/** The folder a model spec loads from. */
export async function resolveModelSpec(spec: string, options: ResolveOptions = {}): Promise<string> {
  const hub = hubSpecOf(spec);
  return hub ? modelFromHub(hub, options) : spec;
}

/** The snapshot folder of a Hub model in the cache, downloading what the cache lacks. */
export async function modelFromHub(hub: HubSpec, options: ResolveOptions = {}): Promise<string> {
  const settings = options.settings ?? hubSettings();
  const cache = new RepoCache(settings.cacheDir, hub.repo);
  const commit = cache.commitOf(hub.revision);
  const missing = commit ? missingModelFiles(cache.snapshot(commit)) : [];
  if (commit && missing.length === 0) {
    options.log?.(`${formatHubSpec(hub)}: from the Hugging Face cache, ${cache.snapshot(commit)}`);
    return cache.snapshot(commit);
  }
  if (settings.offline) throw new HubError(offlineMessage(hub, cache, commit ? missing : undefined));
  try {
    const dir = await download(hub, cache, settings, options);
    options.log?.(`${formatHubSpec(hub)}: downloaded into ${dir}`);
    return dir;
  } catch (e) {
    throw explain(e, hub, settings);
  }
}

/** What one download works with. */
export interface Session {
  hub: HubSpec;
  cache: RepoCache;
  settings: HubSettings;
  fetcher: typeof fetch;
  signal?: AbortSignal;
  commit: string;
  /** The repo's files at `commit`. */
  files: Map<string, ListFileEntry>;
}

async function download(hub: HubSpec, cache: RepoCache, settings: HubSettings, options: ResolveOptions) {
  const session = await openSession(hub, cache, settings, options.signal);
  if (session.files.has(WEIGHTS_INDEX)) await fetchFiles(session, [WEIGHTS_INDEX]);
  await fetchFiles(session, modelFiles(session), options.onProgress);
  cache.writeRef(hub.revision, session.commit);
  return cache.snapshot(session.commit);
}

/** A download of `hub`'s files into `cache`: the commit its revision points to, and its files there. */
export async function openSession(
  hub: HubSpec,
  cache: RepoCache,
  settings: HubSettings,
  signal?: AbortSignal,
): Promise<Session> {
  const fetcher = hubFetch(settings, signal);
  const listing = await listRepo(hub, cache.type, settings, fetcher);
  return { hub, cache, settings, fetcher, signal, ...listing };
}

/** The commit a revision points to, and the repo's files there. */
async function listRepo(
  hub: HubSpec,
  type: RepoType,
  settings: HubSettings,
  fetcher: typeof fetch,
): Promise<Pick<Session, 'commit' | 'files'>> {
  const api = { hubUrl: settings.endpoint, fetch: fetcher };
  const info = { name: hub.repo, revision: hub.revision, additionalFields: ['sha'] as ['sha'], ...api };
  const { sha } = type === 'dataset' ? await datasetInfo(info) : await modelInfo(info);
  const files = new Map<string, ListFileEntry>();
  for await (const entry of listFiles({
    repo: { type, name: hub.repo },
    revision: sha,
    recursive: true,
    ...api,
  })) {
    if (entry.type === 'file') files.set(entry.path, entry);
  }
  return { commit: sha, files };
}

/** The files to fetch, weights last (so a snapshot with its weights is whole); the index, if any, is fetched. */
function modelFiles({ hub, cache, commit, files }: Session): string[] {
  const name = `${formatHubSpec(hub)} (commit ${commit})`;
  if (!files.has(CONFIG)) throw new HubError(`${name} has no ${CONFIG}: it is not a model repo`);
  const indexed = files.has(WEIGHTS_INDEX);
  if (!indexed && !files.has(WEIGHTS))
    throw new HubError(`${name} has no ${WEIGHTS} nor ${WEIGHTS_INDEX}: only safetensors weights can be loaded`);
  const weights = indexed ? shardsOf(path.join(cache.snapshot(commit), WEIGHTS_INDEX)) : [WEIGHTS];
  const absent = weights.filter((f) => !files.has(f));
  if (absent.length)
    throw new HubError(`${name}: ${WEIGHTS_INDEX} names ${absent.join(', ')}, which the repo does not have`);
  return [...METADATA_FILES.filter((f) => files.has(f)), ...weights];
}

/** Fetches the files whose blobs the cache lacks, and links them all into the snapshot. */
export async function fetchFiles(session: Session, files: string[], onProgress?: (p: DownloadProgress) => void) {
  const jobs = files.map((f) => blobJob(session, f));
  const needed = [...new Map(jobs.map((job) => [job.dest, job])).values()].filter((job) => !fs.existsSync(job.dest));
  const progress = new ProgressTracker(
    session.hub.repo,
    needed.reduce((sum, job) => sum + job.size, 0),
    onProgress,
  );
  for (const job of needed) {
    progress.begin(job.file, heldBytes(job));
    await fetchBlob(job, session.fetcher, progress, session.signal);
  }
  for (const job of jobs) session.cache.link(session.commit, job.file, path.basename(job.dest));
}

function blobJob({ hub, cache, settings, commit, files }: Session, file: string): BlobJob {
  const entry = files.get(file)!;
  const etag = entry.lfs?.oid ?? entry.oid;
  if (!etag) throw new HubError(`${formatHubSpec(hub)}: the Hub lists no object id for ${file}`);
  const repoPath = cache.type === 'dataset' ? `datasets/${hub.repo}` : hub.repo;
  const url = `${settings.endpoint}/${repoPath}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
  return { file, url, dest: cache.blob(etag), size: entry.lfs?.size ?? entry.size, sha256: entry.lfs?.oid };
}

/** fetch, stopped by `signal`, with the token on requests to the Hub itself (not on redirects elsewhere). */
function hubFetch(settings: HubSettings, signal?: AbortSignal): typeof fetch {
  const hubOrigin = new URL(settings.endpoint).origin;
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const headers = new Headers(init?.headers);
    if (settings.token && url.origin === hubOrigin) headers.set('Authorization', `Bearer ${settings.token}`);
    return fetch(input, { ...init, headers, signal });
  };
}

/** `missing`: what the cached snapshot lacks, if there is one. */
function offlineMessage(hub: HubSpec, cache: RepoCache, missing?: string[]): string {
  const name = formatHubSpec(hub);
  const what = missing
    ? `its cached snapshot lacks ${missing.join(', ')}`
    : `it is not in the Hugging Face cache (${cache.folder})`;
  return `HF_HUB_OFFLINE is set and ${name} cannot be loaded: ${what}. Download it once with HF_HUB_OFFLINE unset.`;
}

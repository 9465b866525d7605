/**
 * What a stage's data field names, and which files that is:
 *
 *   "sft.jsonl"                                      one file (JSONL, JSON array, CSV, TSV, Parquet)
 *   "my-dataset?split=test"                          a folder laid out as a Hub dataset repo
 *   "hf://datasets/org/name?config=default&split=train&revision=main"   a Hub dataset
 *
 * The query picks a dataset's config (subset, default "default"), split (default "train") and, on
 * the Hub, revision (default "main"). A Hub dataset is downloaded before the stage starts (see
 * src/hub/datasets.ts), and then read as its snapshot folder, with the same query.
 *
 * In a dataset folder, a split's files are found as the Hub lays them out:
 *   data/<split>-00000-of-00001.parquet       (a dataset pushed with the datasets library)
 *   <config>/<split>-00000-of-00001.parquet   (one folder per config)
 *   <config>/<split>/0000.parquet             (the refs/convert/parquet branch)
 *   <split>.jsonl, <split>.csv, ...           (files named by split, at the top or in data/)
 */
import * as fs from 'fs';
import * as path from 'path';

export const HUB_DATASET_SCHEME = 'hf://datasets/';
export const DEFAULT_CONFIG = 'default';
export const DEFAULT_SPLIT = 'train';

export interface DataSpec {
  /** A local path, or the Hub repo id ("org/name") when `hub` is set. */
  path: string;
  hub: boolean;
  config?: string;
  split?: string;
  /** Hub datasets only. */
  revision?: string;
}

const QUERY_KEYS = ['config', 'split', 'revision'] as const;

/** Reads a data field; throws an Error naming what is wrong with it. */
export function parseDataSpec(spec: string): DataSpec {
  const q = spec.indexOf('?');
  const base = q < 0 ? spec : spec.slice(0, q);
  const hub = base.startsWith(HUB_DATASET_SCHEME);
  const parsed: DataSpec = { path: hub ? base.slice(HUB_DATASET_SCHEME.length).replace(/\/+$/, '') : base, hub };
  for (const [key, value] of new URLSearchParams(q < 0 ? '' : spec.slice(q + 1))) {
    if (!(QUERY_KEYS as readonly string[]).includes(key))
      throw new Error(`${spec}: unknown "${key}" in the query (it takes ${QUERY_KEYS.join(', ')})`);
    if (!value) throw new Error(`${spec}: "${key}" in the query is empty`);
    parsed[key as (typeof QUERY_KEYS)[number]] = value;
  }
  if (parsed.revision && !hub) throw new Error(`${spec}: "revision" applies to a Hub dataset (hf://datasets/…) only`);
  return parsed;
}

export function formatDataSpec(spec: DataSpec): string {
  const query = new URLSearchParams();
  for (const key of QUERY_KEYS) if (spec[key]) query.set(key, spec[key]!);
  const base = spec.hub ? `${HUB_DATASET_SCHEME}${spec.path}` : spec.path;
  return query.size ? `${base}?${query}` : base;
}

/** Whether a data field names a Hub dataset (downloaded before the stage reads it). */
export function isHubDataset(spec: string): boolean {
  return spec.startsWith(HUB_DATASET_SCHEME);
}

const DATA_FILE = /\.(parquet|jsonl|json|csv|tsv)$/i;

/** The local files a data field names: the file itself, or a split's files in a dataset folder. */
export function dataFiles(spec: string): string[] {
  const parsed = parseDataSpec(spec);
  if (parsed.hub) throw new Error(`${spec}: a Hub dataset is read once it is downloaded (the stage runner does that)`);
  const isFolder = fs.statSync(parsed.path, { throwIfNoEntry: false })?.isDirectory();
  if (!isFolder) {
    if (parsed.config || parsed.split)
      throw new Error(`${spec}: "config" and "split" pick files in a dataset folder, and ${parsed.path} is not one`);
    return [parsed.path];
  }
  const files = splitFiles(listFiles(parsed.path), parsed.config, parsed.split);
  if ('error' in files) throw new Error(`${parsed.path}: ${files.error}`);
  return files.map((f) => path.join(parsed.path, f));
}

/** The data files under `dir`, as "/"-separated paths relative to it (hidden folders left out). */
function listFiles(dir: string, prefix = ''): string[] {
  return fs.readdirSync(path.join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.name.startsWith('.')) return [];
    const isDir = entry.isDirectory() || (entry.isSymbolicLink() && fs.statSync(path.join(dir, rel)).isDirectory());
    return isDir ? listFiles(dir, rel) : [rel];
  });
}

/**
 * The files of one split of one config among a dataset repo's files ("/"-separated paths), in
 * order; or why there are none, naming the splits and configs there are.
 */
export function splitFiles(files: string[], config?: string, split = DEFAULT_SPLIT): string[] | { error: string } {
  const data = files.filter((f) => DATA_FILE.test(f));
  const folders = config ? [config, `data/${config}`] : ['data', DEFAULT_CONFIG, ''];
  for (const folder of folders) {
    const inFolder = data.flatMap((f) =>
      folder === '' ? [f] : f.startsWith(`${folder}/`) ? [f.slice(folder.length + 1)] : [],
    );
    const matched = inFolder.filter((f) => isSplitFile(f, split));
    if (matched.length) return matched.sort().map((f) => (folder ? `${folder}/${f}` : f));
    const splits = splitNames(inFolder);
    if (splits.length && folder !== '')
      return { error: `no files of split "${split}" in ${folder}/ (its splits: ${splits.join(', ')})` };
  }
  const configs = [...new Set(data.filter((f) => f.includes('/')).map((f) => f.split('/')[0]))];
  const which = config ? `config "${config}"` : `config "${DEFAULT_CONFIG}"`;
  return {
    error:
      `no data files of split "${split}" for ${which}` +
      (configs.length ? ` (its folders: ${configs.join(', ')}; pick one with ?config=NAME)` : ''),
  };
}

/**
 * Whether a file holds the split: "train-00000-of-00002.parquet", "train.jsonl", "train/0000.parquet",
 * "partial-train/0000.parquet", "name-train.parquet".
 */
function isSplitFile(rel: string, split: string): boolean {
  const [first, ...rest] = rel.split('/');
  if (rest.length) return rest.length === 1 && (first === split || first === `partial-${split}`);
  const stem = first.replace(DATA_FILE, '');
  return stem === split || stem.startsWith(`${split}-`) || stem.endsWith(`-${split}`);
}

function splitNames(rels: string[]): string[] {
  const names = rels.map((rel) =>
    rel.includes('/') ? rel.split('/')[0].replace(/^partial-/, '') : rel.replace(DATA_FILE, '').split('-')[0],
  );
  return [...new Set(names)].sort();
}

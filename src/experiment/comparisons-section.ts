/**
 * The labeling queue of an experiment file that has a mistake elsewhere (a misspelt key, a missing
 * comma): its `name` and `comparisons` section are read on their own, so the queue and its labels
 * stay in reach while the file's error shows beside them.
 */
import * as fs from 'fs';
import { findNodeAtLocation, getNodeValue, ParseError, parseTree } from 'jsonc-parser';
import { decodeUtf8 } from '../data/jsonl';
import { isInsideWorkspace } from '../util/workspace-path';
import { ComparisonsSettings, ConfigError, loadExperiment, parseExperiment, placed } from './config';

export interface ComparisonsSection {
  name: string;
  /** Paths absolute and inside the workspace folder, as loadExperiment makes them. */
  comparisons?: ComparisonsSettings;
  /** The whole file's error, when only this section could be used. */
  problem?: string;
}

/** The `name` and `comparisons` of a config file; throws the file's error when the section itself is not usable. */
export function loadComparisons(file: string, workspace: string): ComparisonsSection {
  try {
    const { name, comparisons } = loadExperiment(file, workspace);
    return { name, comparisons };
  } catch (err) {
    if (!(err instanceof ConfigError) || !isInsideWorkspace(file, workspace)) throw err;
    const json = readSections(file, ['name', 'comparisons']);
    if (json?.comparisons === undefined) throw err;
    const name = typeof json.name === 'string' && json.name.trim() ? json.name : undefined;
    let partial;
    try {
      partial = placed(parseExperiment({ name, comparisons: json.comparisons }, file), file, workspace);
    } catch {
      throw err;
    }
    return { name: partial.name, comparisons: partial.comparisons, problem: err.message };
  }
}

/**
 * The top-level values of `keys` in a file that may not be valid JSON, each only when no syntax
 * error lies within it; undefined when the file cannot be read.
 */
function readSections(file: string, keys: string[]): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = decodeUtf8(fs.readFileSync(file));
  } catch {
    return undefined;
  }
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, { allowTrailingComma: true });
  const sections: Record<string, unknown> = {};
  for (const key of keys) {
    const node = tree && findNodeAtLocation(tree, [key]);
    const property = node?.parent;
    if (!node || !property) continue;
    const end = property.offset + property.length;
    if (!errors.some((e) => e.offset >= property.offset && e.offset <= end)) sections[key] = getNodeValue(node);
  }
  return sections;
}

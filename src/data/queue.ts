/**
 * Reading a labeling queue and how far its labeling has got, apart from sampling (comparisons.ts),
 * so the extension host can use it without loading the engine.
 */
import * as fs from 'fs';
import { DataError, expectNonEmptyString, readJsonl } from './jsonl';
import { readPreferences } from './preferences';
import {
  expectString,
  GenerationSettings,
  Label,
  parseCandidateIds,
  parseGeneration,
  parsePrompt,
  PreferenceFields,
  PreferenceRecord,
  TextOrMessages,
} from './preference-record';

export interface ComparisonPair {
  pair_id: string;
  prompt: TextOrMessages;
  response_a: string;
  response_b: string;
  candidate_ids: { a: string; b: string };
  generation: GenerationSettings;
  /** The run whose model sampled the pair ("demo DPO #2"), when it was sampled from a run's model. */
  source?: string;
}

/** A queue's pairs in file order, each pair_id once; bad lines are reported and skipped. */
export function readQueue(file: string): { pairs: ComparisonPair[]; errors: DataError[] } {
  const { records, errors } = readJsonl(file, parsePair);
  return {
    pairs: firstOfEach(
      records.map((r) => r.value),
      (p) => p.pair_id,
    ),
    errors,
  };
}

/** The items whose key is not in `seen` and has not come up before them. */
export function firstOfEach<T>(items: T[], key: (item: T) => string, seen = new Set<string>()): T[] {
  return items.filter((item) => {
    const k = key(item);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function parsePair(json: Record<string, unknown>): ComparisonPair {
  return {
    pair_id: expectNonEmptyString(json.pair_id, 'pair_id'),
    prompt: parsePrompt(json.prompt),
    response_a: expectString(json.response_a, 'response_a'),
    response_b: expectString(json.response_b, 'response_b'),
    candidate_ids: parseCandidateIds(json.candidate_ids),
    generation: parseGeneration(json.generation ?? {}),
    ...(json.source !== undefined && { source: expectNonEmptyString(json.source, 'source') }),
  };
}

export interface QueueStatus {
  total: number;
  /** Pairs with a label that is not undone. */
  done: number;
  /** The first unlabeled pair in queue order. */
  next?: ComparisonPair;
  /** Bad lines of both files. */
  errors: DataError[];
}

/** How far labeling has got; the preferences file may not exist yet. */
export function queueStatus(queueFile: string, preferencesFile: string): QueueStatus {
  const { pairs, unlabeled, errors } = unlabeledPairs(queueFile, preferencesFile);
  return { total: pairs.length, done: pairs.length - unlabeled.length, next: unlabeled[0], errors };
}

export function unlabeledPairs(queueFile: string, preferencesFile: string) {
  const queue = readQueue(queueFile);
  const preferences = fs.existsSync(preferencesFile) ? readPreferences(preferencesFile) : { records: [], errors: [] };
  const labeled = new Set(preferences.records.map((r) => r.id));
  const unlabeled = queue.pairs.filter((p) => !labeled.has(p.pair_id));
  return {
    pairs: queue.pairs,
    unlabeled,
    records: preferences.records,
    errors: [...queue.errors, ...preferences.errors],
  };
}

/** A response of the pair as the store keeps it: text for a text prompt, the assistant's turn for a conversation. */
export function responseOf(pair: ComparisonPair, text: string): TextOrMessages {
  return typeof pair.prompt === 'string' ? text : [{ role: 'assistant', content: text }];
}

/** The preference record for labeling `pair` with `label`. */
export function labelPair(
  pair: ComparisonPair,
  label: Label,
  extra: Pick<PreferenceFields, 'rationale' | 'annotator' | 'shown_left' | 'duration_seconds'> = {},
): PreferenceRecord {
  const [a, b] = [responseOf(pair, pair.response_a), responseOf(pair, pair.response_b)];
  const about = {
    ...extra,
    created_at: new Date().toISOString(),
    candidate_ids: pair.candidate_ids,
    generation: pair.generation,
  };
  const head = { id: pair.pair_id, prompt: pair.prompt };
  if (label === 'a' || label === 'b') {
    return { ...head, label, chosen: label === 'a' ? a : b, rejected: label === 'a' ? b : a, ...about };
  }
  return { ...head, label, response_a: a, response_b: b, ...about };
}

/**
 * The comparisons stage: samples a model's responses to each prompt and adds their pairs to the
 * labeling queue, where they wait for a person (or the demo's rule) to pick the better. A queue
 * file is JSONL, one pair a line:
 *
 *   {"pair_id": "5d0c…", "prompt": "What does a cat eat?",
 *    "response_a": " A cat eats fish.", "response_b": " A cat eats grass.",
 *    "candidate_ids": {"a": "9c1e0d7a4b2f-1", "b": "9c1e0d7a4b2f-0"},
 *    "generation": {"model": "…", "seed": 0, "n": 2, "temperature": 0.9, "top_k": 0, "top_p": 1, "max_new_tokens": 48}}
 *
 * The prompt is text or chat messages, as in the prompts file. A response is what follows the
 * prompt: for text, the raw continuation (prompt + response is what the model wrote); for a
 * conversation, the assistant message's content. A candidate id is "<prompt hash>-<sample
 * index>"; pair_id hashes the prompt and both candidates (ids and texts, and the source when
 * there is one), so the same prompts sampled by another model give new pairs. Pairs sampled from
 * a run's model carry the run's name in "source" (see CandidateOptions.source). A label is a
 * preference record whose id is the pair_id (see preferences.ts).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import { ProviderChoice, Runtime } from '../engine/runtime';
import { State } from '../engine/state';
import { ChatFormat } from '../model/chat';
import { responseText } from '../model/text-stream';
import { Tokenizer, promptIds } from '../model/tokenizer';
import { Generator, SamplingOptions } from './generate';
import { mergedModel } from './adapters';
import { LoadedModel, loadModel, putTensors } from './model-state';
import { Rng } from '../util/rng';
import { Experiment } from '../experiment/config';
import { appendJsonLines } from '../data/jsonl-append';
import { DataError } from '../data/jsonl';
import { ColumnMapping } from '../data/formats/read';
import { loadPrompts } from '../data/formats/stage-data';
import { GenerationSettings, TextOrMessages } from '../data/preference-record';
import { ComparisonPair, firstOfEach, readQueue } from '../data/queue';

export interface CandidateOptions {
  /** Checkpoint directory (or a preset name, for a randomly initialised model). */
  model: string;
  /** A data field of {"prompt": text or messages} records (or others with a prompt, see src/data/formats/kinds.ts). */
  prompts: string;
  /** Field renames for the prompts' records. */
  columns?: ColumnMapping;
  /** Queue file; created if missing, appended to otherwise. */
  queue: string;
  /**
   * The run the model comes from ("demo DPO #2"), recorded as each pair's "source". A prompt
   * counts as queued only when it has pairs of the same source, so each run's model gets its turn.
   */
  source?: string;
  /** Samples per prompt, at least 2. Default 2. */
  n?: number;
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  provider?: ProviderChoice;
  threads?: number;
  /** Extra variables for the model's chat template (e.g. { enable_thinking: false }). */
  chatTemplateKwargs?: Record<string, unknown>;
  onProgress?: (progress: CandidateProgress) => void;
  /** Stops after the current prompt; a later run picks up where this one stopped. */
  signal?: AbortSignal;
}

/** The candidate options an experiment's "comparisons" section gives, sampling from `model` into `queue`. */
export function experimentCandidates(exp: Experiment, model: string, queue: string): CandidateOptions {
  const c = exp.comparisons;
  if (!c)
    throw new Error('the experiment has no "comparisons" section: add one with the prompts to sample candidates for');
  return {
    model,
    prompts: c.prompts,
    columns: c.columns,
    queue,
    n: c.num_candidates,
    maxNewTokens: c.max_new_tokens,
    temperature: c.temperature,
    topK: c.top_k,
    topP: c.top_p,
    seed: exp.seed,
    provider: exp.runtime.provider,
    threads: exp.runtime.threads,
    chatTemplateKwargs: exp.chat_template_kwargs,
  };
}

export interface CandidateProgress {
  /** Prompts sampled so far in this run, of `total` to sample. */
  done: number;
  total: number;
  /** Pairs written so far in this run. */
  pairs: number;
}

export interface CandidateSummary {
  /** Prompts sampled in this run. */
  sampled: number;
  /** Prompts left out because the queue already has them (or they repeat in the prompts file). */
  alreadyQueued: number;
  pairs: number;
  stopped: boolean;
  /** Bad lines of the queue, and prompts too long for the model's context. */
  errors: DataError[];
  /** What was read of the prompts, for the log. */
  read: string;
}

/**
 * Samples `n` responses to each prompt not yet in the queue and appends the pairs of distinct
 * ones, all of a prompt's pairs in one durable write. A prompt whose samples all come out the
 * same (trimmed) leaves no pair, and is sampled again on a re-run.
 */
export async function generateCandidates(options: CandidateOptions): Promise<CandidateSummary> {
  const settings = candidateSettings(options);
  const model = languageModel(options.model, settings.seed);
  const chat = model.tokenizer.chat(options.chatTemplateKwargs);
  const read = await loadPrompts(options.prompts, { columns: options.columns, templated: chat.templated });
  const prompts = read.prompts.map(({ place, value }) => ({ place, prompt: value.prompt }));
  const queue = fs.existsSync(options.queue) ? readQueue(options.queue) : { pairs: [], errors: [] };
  const queued = new Set(queue.pairs.filter((p) => p.source === options.source).map((p) => promptKey(p.prompt)));
  const todo = firstOfEach(prompts, (p) => promptKey(p.prompt), queued);
  const summary: CandidateSummary = {
    sampled: 0,
    alreadyQueued: prompts.length - todo.length,
    pairs: 0,
    stopped: false,
    errors: queue.errors,
    read: read.summary,
  };
  if (todo.length === 0) return summary;

  const sampler = await openSampler(model, chat, options);
  try {
    for (const { place, prompt } of todo) {
      if (options.signal?.aborted) {
        summary.stopped = true;
        break;
      }
      const ids = promptIds(sampler.tokenizer, sampler.chat, prompt);
      if (ids.length >= sampler.contextLength) {
        summary.errors.push({
          ...place,
          message: `prompt is ${ids.length} tokens; the model's context is ${sampler.contextLength}`,
        });
      } else {
        summary.pairs += await queuePrompt(sampler, prompt, ids, settings, options.queue);
      }
      summary.sampled++;
      options.onProgress?.({ done: summary.sampled, total: todo.length, pairs: summary.pairs });
    }
  } finally {
    await sampler.generator.release();
  }
  return summary;
}

interface CandidateSettings {
  n: number;
  seed: number;
  sampling: SamplingOptions;
  /** Recorded with every pair. */
  generation: GenerationSettings;
  source?: string;
}

function candidateSettings(options: CandidateOptions): CandidateSettings {
  const n = options.n ?? 2;
  if (!Number.isInteger(n) || n < 2) throw new Error(`samples per prompt must be an integer of at least 2, got ${n}`);
  const seed = options.seed ?? 0;
  const sampling: SamplingOptions = {
    maxNewTokens: options.maxNewTokens ?? 48,
    temperature: options.temperature ?? 0.9,
    topK: options.topK ?? 0,
    topP: options.topP ?? 1,
  };
  const generation: GenerationSettings = {
    model: options.model,
    seed,
    n,
    temperature: sampling.temperature,
    top_k: sampling.topK,
    top_p: sampling.topP,
    max_new_tokens: sampling.maxNewTokens,
  };
  return { n, seed, sampling, generation, source: options.source };
}

/** Samples one prompt and appends its pairs in one durable write; returns how many. */
async function queuePrompt(
  sampler: Sampler,
  prompt: TextOrMessages,
  ids: number[],
  settings: CandidateSettings,
  queueFile: string,
): Promise<number> {
  const texts = await sampleResponses(
    sampler,
    prompt,
    ids,
    settings.n,
    settings.sampling,
    promptSeed(settings.seed, prompt),
  );
  const pairs = pairUp(prompt, texts, settings);
  if (pairs.length > 0) await appendJsonLines(queueFile, pairs);
  return pairs.length;
}

/** Same prompt, same key: messages keep only role and content, in that order. */
function promptKey(prompt: TextOrMessages): string {
  return JSON.stringify(typeof prompt === 'string' ? prompt : prompt.map(({ role, content }) => ({ role, content })));
}

function hash(text: string, hexDigits: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, hexDigits);
}

/** Each prompt draws from its own stream, so its samples do not depend on which prompts ran before. */
function promptSeed(seed: number, prompt: TextOrMessages): number {
  return parseInt(hash(`${seed}\n${promptKey(prompt)}`, 8), 16);
}

interface Sampler {
  generator: Generator;
  tokenizer: Tokenizer;
  chat: ChatFormat;
  contextLength: number;
}

/** The model to sample from; an adapter folder merged into its base. */
function languageModel(model: string, seed: number): LoadedModel {
  const loaded = mergedModel(loadModel(model, seed));
  if (loaded.head !== 'lm')
    throw new Error(`${model}: a ${loaded.head} model cannot write responses; give a language model`);
  return loaded;
}

async function openSampler(
  loaded: LoadedModel,
  chat: ChatFormat,
  { provider = 'auto', threads }: CandidateOptions,
): Promise<Sampler> {
  const runtime = await Runtime.create({ provider, threads });
  const state = new State(runtime);
  putTensors(state, loaded.params);
  const { tokenizer } = loaded;
  const generator = await Generator.create(runtime, loaded.config, state, tokenizer.padId);
  return { generator, tokenizer, chat, contextLength: loaded.config.nPositions };
}

async function sampleResponses(
  sampler: Sampler,
  prompt: TextOrMessages,
  ids: number[],
  n: number,
  sampling: SamplingOptions,
  seed: number,
): Promise<string[]> {
  const { generator, tokenizer, chat } = sampler;
  // One prefill of the prompt, shared by its n samples.
  const out = await generator.generateGroups([ids], n, sampling, tokenizer.stopIds, new Rng(seed));
  return out.map((g) => {
    const text = responseText(tokenizer, g.tokens);
    return typeof prompt === 'string' ? text : chat.replyContent(text);
  });
}

/** Every pair of distinct responses; responses that match once trimmed cannot be judged apart. */
function pairUp(prompt: TextOrMessages, texts: string[], settings: CandidateSettings): ComparisonPair[] {
  const promptHash = hash(promptKey(prompt), 12);
  const candidates = texts.map((text, i) => ({ id: `${promptHash}-${i}`, text }));
  const distinct = candidates.filter((c, i) => candidates.findIndex((d) => d.text.trim() === c.text.trim()) === i);
  const pairs: ComparisonPair[] = [];
  for (let i = 0; i < distinct.length; i++) {
    for (let j = i + 1; j < distinct.length; j++) pairs.push(makePair(prompt, distinct[i], distinct[j], settings));
  }
  return pairs;
}

type Candidate = { id: string; text: string };

function makePair(
  prompt: TextOrMessages,
  first: Candidate,
  second: Candidate,
  { generation, source }: Pick<CandidateSettings, 'generation' | 'source'>,
): ComparisonPair {
  const hashed = [promptKey(prompt), first.id, first.text, second.id, second.text, ...(source ? [source] : [])];
  const pairId = hash(JSON.stringify(hashed), 16);
  // The pair id picks which sample is shown as A, so the earlier one is not always on the same side.
  const [a, b] = parseInt(pairId[0], 16) % 2 === 0 ? [first, second] : [second, first];
  return {
    pair_id: pairId,
    prompt,
    response_a: a.text,
    response_b: b.text,
    candidate_ids: { a: a.id, b: b.id },
    generation,
    ...(source !== undefined && { source }),
  };
}

/**
 * The rewards of GRPO and RLOO (TRL's `reward_funcs`): the functions exported by workspace files,
 * called as TRL calls them (`{ prompts, completions, completionIds, ...datasetColumns, trainerState,
 * logMetric }` → one number or null per completion), and reward-model checkpoints. A function that
 * throws, or returns the wrong number of rewards or one that is not a finite number or null, stops
 * the run naming its file, line and the offending sample.
 */
import * as path from 'path';
import { RuntimeOptions } from '../../engine/runtime';
import { TextOrMessages } from '../../data/preference-record';
import { isRewardFuncFile } from '../../experiment/group-rl';
import { Scorer } from '../scorer';
import { ExportedFunction, RewardModules, errorWithFrame } from './reward-module';

/** What the rewards of one rollout are computed from, one entry per completion. */
export interface RewardInputs {
  prompts: TextOrMessages[];
  completions: string[];
  completionIds: number[][];
  /** The dataset columns of each completion's prompt row, other than "prompt". */
  columns: Record<string, unknown>[];
  trainerState: Record<string, unknown>;
}

export interface RewardScores {
  /** Function f's reward of completion i at [f][i]; NaN where it gave none (null). */
  perFunc: Float64Array[];
  names: string[];
  weights: number[];
  /** What the functions logged with logMetric, averaged. */
  logged: Record<string, number>;
}

/** A reward function's error, naming the file and line. */
export class RewardFunctionError extends Error {}

type Source = { kind: 'file'; file: string } | { kind: 'model'; dir: string; scorer: Scorer; name: string };

export class Rewards {
  private constructor(
    private readonly sources: Source[],
    private readonly modules: RewardModules,
    private readonly weights: number[] | undefined,
  ) {}

  /**
   * `entries`: reward function files and reward-model folders, in order; `weights` one per function
   * (a file gives one per exported function). Files are bundled into `cacheDir`.
   */
  static async create(
    entries: string[],
    weights: number[] | undefined,
    cacheDir: string,
    runtime: RuntimeOptions = {},
  ): Promise<Rewards> {
    const sources: Source[] = [];
    for (const entry of entries) {
      if (isRewardFuncFile(entry)) sources.push({ kind: 'file', file: entry });
      else
        sources.push({
          kind: 'model',
          dir: entry,
          scorer: await Scorer.load(entry, runtime),
          name: path.basename(entry),
        });
    }
    const rewards = new Rewards(sources, new RewardModules(cacheDir), weights);
    await rewards.functionNames(); // compile errors and weight counts show before training starts
    return rewards;
  }

  /** The reward functions' names, in order (a file's exported functions by declaration). */
  async functionNames(): Promise<string[]> {
    const names: string[] = [];
    for (const s of this.sources) {
      if (s.kind === 'model') names.push(s.name);
      else names.push(...(await this.modules.load(s.file)).functions.map((f) => f.name));
    }
    if (this.weights && this.weights.length !== names.length)
      throw new RewardFunctionError(
        `reward_weights has ${this.weights.length} weights for ${names.length} reward functions (${names.join(', ')})`,
      );
    return names;
  }

  /** Every function's rewards of a rollout's completions. */
  async score(inputs: RewardInputs): Promise<RewardScores> {
    const perFunc: Float64Array[] = [];
    const logged = new Map<string, number[]>();
    const logMetric = (name: string, value: number) => logged.set(name, [...(logged.get(name) ?? []), value]);
    for (const s of this.sources) {
      if (s.kind === 'model') {
        const pairs = inputs.prompts.map((prompt, i) => ({
          prompt,
          response: asResponse(prompt, inputs.completions[i]),
        }));
        perFunc.push(Float64Array.from(await s.scorer.scoreTexts(pairs)));
        continue;
      }
      const module = await this.modules.load(s.file);
      for (const f of module.functions)
        perFunc.push(await callRewardFunction(f, s.file, module.sources, inputs, logMetric));
    }
    const names = await this.functionNames();
    const logged_ = Object.fromEntries([...logged].map(([k, v]) => [k, v.reduce((a, b) => a + b, 0) / v.length]));
    return { perFunc, names, weights: this.weights ?? names.map(() => 1), logged: logged_ };
  }

  async release(): Promise<void> {
    for (const s of this.sources) if (s.kind === 'model') await s.scorer.release();
  }
}

/** A completion as the reward model reads it: text, or an assistant message after a conversation. */
function asResponse(prompt: TextOrMessages, completion: string): TextOrMessages {
  return typeof prompt === 'string' ? completion : [{ role: 'assistant', content: completion }];
}

/**
 * TRL's keyword arguments for the completions at `rows`: the batch's lists, and each dataset column
 * as a list, one entry per completion (null where a record lacks the column, as datasets gives None).
 */
function argumentsFor(inputs: RewardInputs, rows: number[], logMetric: (name: string, value: number) => void) {
  const names = new Set(rows.flatMap((i) => Object.keys(inputs.columns[i])));
  const columns = Object.fromEntries(
    [...names].map((k) => [k, rows.map((i) => (k in inputs.columns[i] ? inputs.columns[i][k] : null))]),
  );
  return {
    ...columns,
    prompts: rows.map((i) => inputs.prompts[i]),
    completions: rows.map((i) => asResponse(inputs.prompts[i], inputs.completions[i])),
    completionIds: rows.map((i) => inputs.completionIds[i]),
    trainerState: inputs.trainerState,
    logMetric,
  };
}

/** Calls one reward function on every completion and checks what it returns. */
export async function callRewardFunction(
  f: ExportedFunction,
  file: string,
  sources: string[],
  inputs: RewardInputs,
  logMetric: (name: string, value: number) => void,
): Promise<Float64Array> {
  const n = inputs.completions.length;
  const all = [...Array(n).keys()];
  const where = `${file}:${f.line}: reward function ${f.name}`;
  let out: unknown;
  try {
    out = await f.fn(argumentsFor(inputs, all, logMetric));
  } catch (e) {
    const culprit = await firstThrowing(f, inputs);
    const on = culprit === undefined ? 'on the batch' : `on ${describeSample(inputs, culprit)}`;
    throw new RewardFunctionError(
      `${errorWithFrame(e, sources).replace(/^(?!\S+:\d+:\d+: )/, `${where}: `)}\n  ${f.name} threw ${on}`,
    );
  }
  if (!Array.isArray(out) && !(ArrayBuffer.isView(out) && 'length' in out))
    throw new RewardFunctionError(`${where} returned ${typeName(out)}, not an array of ${n} rewards (numbers or null)`);
  const values = Array.from(out as ArrayLike<unknown>);
  if (values.length !== n)
    throw new RewardFunctionError(`${where} returned ${values.length} rewards for ${n} completions`);
  return Float64Array.from(values, (v, i) => {
    if (v === null || v === undefined) return NaN;
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    throw new RewardFunctionError(`${where} returned ${String(v)} for ${describeSample(inputs, i)}`);
  });
}

/** The first completion on which the function throws when called on it alone. */
async function firstThrowing(f: ExportedFunction, inputs: RewardInputs): Promise<number | undefined> {
  for (let i = 0; i < inputs.completions.length; i++) {
    try {
      await f.fn(argumentsFor(inputs, [i], () => {}));
    } catch {
      return i;
    }
  }
  return undefined;
}

const clipped = (s: string) => (s.length > 200 ? `${s.slice(0, 200)}…` : s);

function describeSample(inputs: RewardInputs, i: number): string {
  const prompt = inputs.prompts[i];
  const text = typeof prompt === 'string' ? prompt : prompt[prompt.length - 1].content;
  return `sample ${i} (prompt ${JSON.stringify(clipped(text))}, completion ${JSON.stringify(clipped(inputs.completions[i]))})`;
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

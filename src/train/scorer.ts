/**
 * Scoring with a reward model: prompt + response pairs, as text or token ids, in batches. A reward
 * checkpoint carries the mean and std of its rewards on a reference set of texts (config.json
 * "reward_normalization"); scores come out as (r - mean) / std, so PPO sees rewards near N(0, 1).
 */
import * as ort from 'onnxruntime-node';
import { toOnnx } from '../engine/onnx';
import { Program, Runtime, RuntimeOptions, hostTensor } from '../engine/runtime';
import { State } from '../engine/state';
import { ModelConfig } from '../model/config';
import { attentionBias } from '../model/masks';
import { rewardInputs, rewardParamInputs, rewards } from '../model/reward';
import { isPlainObject } from '../util/objects';
import { ChatFormat, ChatMessage } from '../model/chat';
import { Tokenizer, sequenceIds } from '../model/tokenizer';
import { TextOrMessages } from '../data/preference-record';
import { LoraAdapter } from '../model/lora';
import { mergedModel } from './adapters';
import { loadModelFolder, putTensors } from './model-state';

export interface RewardNormalization {
  mean: number;
  std: number;
}

/** The key that holds the normalisation in config.json (and trainer_state.json). */
export const NORMALIZATION_KEY = 'reward_normalization';

/** The normalisation recorded in a reward model's config, if any. */
export function normalizationOf(cfg: ModelConfig): RewardNormalization | undefined {
  const n = cfg.hfExtra?.[NORMALIZATION_KEY];
  if (n === undefined) return undefined;
  if (!isPlainObject(n) || !Number.isFinite(n.mean) || !(Number(n.std) > 0 && Number.isFinite(n.std))) {
    throw new Error(
      `config.json: "${NORMALIZATION_KEY}" must be {"mean": number, "std": positive number}, got ${JSON.stringify(n)}`,
    );
  }
  return { mean: n.mean as number, std: n.std as number };
}

/** The config with `n` recorded in its config.json keys, or with none when `n` is undefined. */
export function withNormalization(cfg: ModelConfig, n?: RewardNormalization): ModelConfig {
  const { [NORMALIZATION_KEY]: _old, ...rest } = cfg.hfExtra ?? {};
  const hfExtra = n ? { ...rest, [NORMALIZATION_KEY]: n } : rest;
  const { hfExtra: _, ...plain } = cfg;
  return Object.keys(hfExtra).length ? { ...plain, hfExtra } : plain;
}

/** The mean and (population) std of a set of rewards; a std of 0 becomes 1. */
export function measureNormalization(scores: number[]): RewardNormalization {
  const bad = scores.find((r) => !Number.isFinite(r));
  if (bad !== undefined || scores.length === 0)
    throw new Error(`cannot normalise rewards: ${scores.length ? `a reward is ${bad}` : 'no texts were scored'}`);
  const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
  const std = Math.sqrt(scores.reduce((a, r) => a + (r - mean) ** 2, 0) / scores.length);
  return { mean, std: std > 0 ? std : 1 };
}

/**
 * The token ids the reward model reads for a prompt and response. Text: prompt and response
 * encoded apart, then EOS. A conversation (prompt messages, then the response's assistant
 * messages): as `chat` renders it, up to the token that ends its last assistant turn.
 */
export function rewardSequence(
  tokenizer: Tokenizer,
  prompt: TextOrMessages,
  response: TextOrMessages,
  chat: ChatFormat = tokenizer.chat(),
): number[] {
  if (typeof prompt === 'string')
    return [...sequenceIds(tokenizer, prompt), ...tokenizer.encode(response as string), tokenizer.eosId];
  // The parser keeps a record in one form: a conversational prompt has conversational responses.
  const { ids, lossMask } = chat.conversation([...prompt, ...(response as ChatMessage[])]);
  return ids.slice(0, lossMask.lastIndexOf(1) + 1);
}

/**
 * Sequences as right-padded inputs of the reward graph; `lastDims` shapes the rewards (row order),
 * e.g. [2, P] for P chosen rows followed by P rejected rows.
 */
export function rewardFeeds(
  sequences: number[][],
  padId: number,
  lastDims: number[] = [sequences.length],
): Record<string, ort.Tensor> {
  const b = sequences.length,
    t = Math.max(...sequences.map((s) => s.length));
  const tokens = new Int32Array(b * t).fill(padId),
    positions = new Int32Array(b * t);
  const keyMask = new Float32Array(b * t),
    last = new Int32Array(b);
  sequences.forEach((seq, row) => {
    if (seq.length === 0) throw new Error(`reward model input: row ${row} is empty`);
    seq.forEach((id, i) => {
      tokens[row * t + i] = id;
      positions[row * t + i] = i;
      keyMask[row * t + i] = 1;
    });
    last[row] = row * t + seq.length - 1;
  });
  return {
    tokens: hostTensor('int32', tokens, [b, t]),
    positions: hostTensor('int32', positions, [b, t]),
    attn_bias: hostTensor('float32', attentionBias(keyMask, b, t, t), [b, 1, t, t]),
    last: hostTensor('int32', last, lastDims),
  };
}

export interface ScorerOptions {
  /** The reward model's tokenizer. */
  tokenizer: Tokenizer;
  /** The model's name prefix in the state. */
  prefix?: string;
  /** Whether the model has score.bias. */
  bias?: boolean;
  /** Applied to every score; raw scores when absent. */
  normalization?: RewardNormalization;
  /** Sequences per run. */
  batchSize?: number;
  /** The model's adapter, when it has one (its tensors beside the model's under `prefix`). */
  adapter?: LoraAdapter;
}

export class Scorer {
  private constructor(
    private readonly program: Program,
    private readonly state: State,
    readonly config: ModelConfig,
    readonly tokenizer: Tokenizer,
    private readonly batchSize: number,
    readonly normalization: RewardNormalization | undefined,
    private readonly ownsState: boolean,
  ) {}

  /** Scores with the reward model whose parameters `state` holds. */
  static create(runtime: Runtime, cfg: ModelConfig, state: State, options: ScorerOptions): Promise<Scorer> {
    return Scorer.build(runtime, cfg, state, options, false);
  }

  /**
   * Loads a reward-model checkpoint with its tokenizer, normalising as it records (an adapter's
   * normalisation is in its trainer_state.json); an adapter folder is merged into its base.
   */
  static async load(
    dir: string,
    runtime: RuntimeOptions = {},
    options: Pick<ScorerOptions, 'batchSize'> = {},
  ): Promise<Scorer> {
    const loaded = loadModelFolder(dir);
    const recorded = loaded.adapter && loaded.checkpoint?.trainerState?.[NORMALIZATION_KEY];
    const model = mergedModel(loaded);
    if (model.head !== 'score')
      throw new Error(`${dir} is not a reward model (it has no score head); train one with "rlhf rm"`);
    const rt = await Runtime.create(runtime);
    const state = new State(rt);
    putTensors(state, model.params);
    const { config, params, tokenizer } = model;
    return Scorer.build(
      rt,
      config,
      state,
      {
        ...options,
        tokenizer,
        bias: params.has('score.bias'),
        normalization: normalizationOf(recorded ? withNormalization(config, recorded as never) : config),
      },
      true,
    );
  }

  private static async build(
    runtime: Runtime,
    cfg: ModelConfig,
    state: State,
    options: ScorerOptions,
    ownsState: boolean,
  ): Promise<Scorer> {
    const lora = options.adapter && { adapter: options.adapter };
    const p = rewardParamInputs(cfg, options.bias, options.prefix, lora);
    const program = await runtime.load(toOnnx({ rewards: rewards(p, cfg, rewardInputs()) }, 'reward'));
    return new Scorer(
      program,
      state,
      cfg,
      options.tokenizer,
      options.batchSize ?? 16,
      options.normalization,
      ownsState,
    );
  }

  /** The reward of each token sequence, read at its last token (nothing is appended). */
  async scoreIds(sequences: number[][]): Promise<number[]> {
    const long = sequences.findIndex((s) => s.length > this.config.nPositions);
    if (long >= 0)
      throw new Error(
        `sequence ${long} has ${sequences[long].length} tokens; the reward model reads at most ${this.config.nPositions}`,
      );
    const out: number[] = [];
    for (let i = 0; i < sequences.length; i += this.batchSize) {
      const feeds = rewardFeeds(sequences.slice(i, i + this.batchSize), this.tokenizer.padId);
      const res = await this.program.run(this.state.feedsFor(this.program, feeds));
      out.push(...Array.from(res.rewards.data as Float32Array, (r) => this.normalize(r)));
    }
    return out;
  }

  /** PPO's reward: prompt ids + response ids as they are (a finished response ends with EOS). */
  scoreTokens(prompts: number[][], responses: number[][]): Promise<number[]> {
    return this.scoreIds(prompts.map((p, i) => [...p, ...responses[i]]));
  }

  /** The reward of each prompt and response, read as in training (rewardSequence). */
  scoreTexts(pairs: { prompt: TextOrMessages; response: TextOrMessages }[]): Promise<number[]> {
    return this.scoreIds(pairs.map((p) => rewardSequence(this.tokenizer, p.prompt, p.response)));
  }

  async release(): Promise<void> {
    await this.program.release();
    if (this.ownsState) await this.state.release();
  }

  private normalize(r: number): number {
    return this.normalization ? (r - this.normalization.mean) / this.normalization.std : r;
  }
}

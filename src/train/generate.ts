/**
 * Batched sampling with a KV cache: one prefill run over the left-padded prompts, then one decode
 * run per new token that attends to the cached keys/values (kept in host memory between runs, or
 * on the device where the provider keeps state there). The graphs have symbolic batch and length
 * dims, so each is built and loaded once and serves every shape; greedy decoding has its own pair,
 * which picks the token in the graph.
 */
import * as ort from 'onnxruntime-node';
import { argmax, reshape, slice, softmax } from '../engine/ops';
import { toOnnx } from '../engine/onnx';
import { Program, Runtime, hostTensor } from '../engine/runtime';
import { State } from '../engine/step';
import { Tensor, input } from '../engine/tensor';
import { KV } from '../model/architecture';
import { ModelConfig } from '../model/config';
import { kvShape, lastTokenLogits, pastInputs, sequenceInputs, transformer } from '../model/decoder';
import { AdapterPlace, modelInputs } from '../model/lora';
import { attentionBias, positionIds } from '../model/masks';
import { Rng } from '../util/rng';

export interface SamplingOptions {
  maxNewTokens: number;
  /** 0 means greedy. */
  temperature: number;
  /** Keep only the k most likely tokens (0 = all). */
  topK: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = all). */
  topP: number;
}

export const GREEDY: Omit<SamplingOptions, 'maxNewTokens'> = { temperature: 0, topK: 0, topP: 1 };

export interface Generation {
  /** New tokens, ending with a stop token when `finished`. */
  tokens: number[];
  finished: boolean;
}

/**
 * Outputs the last position's probabilities softmax(logits / temperature) [B, V] to sample from
 * (the temperature an input; the exponentials run vectorised in the session, not per token on the
 * host), or for greedy decoding only the logits' argmax [B] (no vocabulary-sized output to copy out
 * per token), and every layer's keys/values
 * [B, nKvHead, S, headDim]: all S positions, or with `newOnly` just the new one (for a host-side cache).
 */
function lastTokenGraph(
  cfg: ModelConfig,
  model: { prefix: string; lora?: AdapterPlace },
  keys: string,
  greedy: boolean,
  past?: KV[],
  newOnly = false,
) {
  const p = modelInputs(cfg, 'lm', model.prefix, model.lora);
  const inp = sequenceInputs(keys);
  const { hidden, present } = transformer(p, cfg, inp, past);
  const last = reshape(slice(hidden, 1, -1), [hidden.shape[0], cfg.nEmbd]);
  const logits = lastTokenLogits(p, cfg, last);
  const outputs: Record<string, Tensor> = greedy
    ? { next: argmax(logits, -1) }
    : { probs: softmax(logits.div(input('temperature', 'float32', [])), -1) };
  present.forEach((kv, i) => {
    outputs[`present.${i}.key`] = newOnly ? slice(kv.key, 2, -1) : kv.key;
    outputs[`present.${i}.value`] = newOnly ? slice(kv.value, 2, -1) : kv.value;
  });
  return toOnnx(outputs, `${past ? 'decode' : 'prefill'}${greedy ? '_greedy' : ''}`);
}

/**
 * Every layer's keys and values on the host, position-major ([S, B, H, hd] in a buffer sized for
 * the whole generation): the S positions so far are a contiguous prefix, fed to the decode graph
 * without a copy, and each decode run's new position is appended in place. A cache that the
 * session outputs whole every token costs a copy of all of it out of onnxruntime per token.
 */
class HostKvCache {
  private length = 0;
  /** Floats per position: B · H · hd. */
  private readonly slotSize: number;

  private constructor(
    private readonly buffers: Map<string, Float32Array>,
    private readonly slotDims: number[],
  ) {
    this.slotSize = slotDims.reduce((a, d) => a * d, 1);
  }

  /**
   * The cache after the prefill run (`present.*` [B, H, T, hd]), with room for `capacity` positions;
   * each prefilled row becomes `copies` consecutive rows (continuations of one prompt share its keys/values).
   */
  static fromPrefill(res: Record<string, ort.Tensor>, capacity: number, copies = 1): HostKvCache {
    const names = Object.keys(res).filter((k) => k.startsWith('present.'));
    const [b, h, t, hd] = res[names[0]].dims;
    const rows = b * copies;
    const buffers = new Map(names.map((n) => [pastName(n), new Float32Array(capacity * rows * h * hd)]));
    const cache = new HostKvCache(buffers, [rows, h, hd]);
    for (const n of names) {
      const from = res[n].data as Float32Array,
        to = cache.buffers.get(pastName(n))!;
      for (let src = 0; src < b * h; src++) {
        const [row, head] = [Math.floor(src / h), src % h];
        for (let c = 0; c < copies; c++) {
          const dst = (row * copies + c) * h + head;
          for (let pos = 0; pos < t; pos++)
            to.set(from.subarray((src * t + pos) * hd, (src * t + pos + 1) * hd), (pos * rows * h + dst) * hd);
        }
      }
    }
    cache.length = t;
    return cache;
  }

  /** The `past.*` feeds: the first S positions, [S, B, H, hd]. */
  past(): Record<string, ort.Tensor> {
    const feed = (buf: Float32Array) =>
      hostTensor('float32', buf.subarray(0, this.length * this.slotSize), [this.length, ...this.slotDims]);
    return Object.fromEntries([...this.buffers].map(([n, buf]) => [n, feed(buf)]));
  }

  /** Appends a decode run's new position (`present.*` [B, H, 1, hd]: the layout of one slot). */
  append(res: Record<string, ort.Tensor>): void {
    for (const [n, buf] of this.buffers)
      buf.set(res[n.replace('past.', 'present.')].data as Float32Array, this.length * this.slotSize);
    this.length++;
  }
}

const pastName = (present: string) => present.replace('present.', 'past.');

/** A prefill program and a KV-cache decode program. */
interface Programs {
  prefill: Program;
  decode: Program;
}

export class Generator {
  private constructor(
    private readonly cfg: ModelConfig,
    private readonly state: State,
    private readonly sampling: Programs,
    private readonly greedy: Programs,
    private readonly padId: number,
    /** Whether the KV cache lives on the host (HostKvCache), or stays on the device between runs. */
    private readonly hostCache: boolean,
  ) {}

  /**
   * `state` holds the model's parameters under their HF names, each preceded by `prefix`; with
   * `lora`, its adapter's too, on the base where the place says.
   */
  static async create(
    runtime: Runtime,
    cfg: ModelConfig,
    state: State,
    padId: number,
    prefix = '',
    lora?: AdapterPlace,
  ): Promise<Generator> {
    const hostCache = !runtime.keepsStateOnDevice;
    const { layers } = kvShape(cfg);
    const cache = hostCache
      ? []
      : Array.from({ length: layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
    const load = async (greedy: boolean): Promise<Programs> => ({
      prefill: await runtime.load(lastTokenGraph(cfg, { prefix, lora }, 'T', greedy), cache),
      decode: await runtime.load(
        lastTokenGraph(cfg, { prefix, lora }, 'P+T', greedy, pastInputs(cfg, hostCache), hostCache),
        cache,
      ),
    });
    return new Generator(cfg, state, await load(false), await load(true), padId, hostCache);
  }

  /**
   * Runs `program` over the last T of the S positions in `ids`/`mask` ([B, S] each), with `extra`
   * feeds (the cache, the temperature).
   */
  private async forward(
    program: Program,
    ids: number[][],
    mask: Float32Array,
    t: number,
    extra: Record<string, ort.Tensor> = {},
  ) {
    const b = ids.length,
      s = ids[0].length;
    const tokens = Int32Array.from(ids.flatMap((row) => row.slice(s - t)));
    return program.run(
      this.state.feedsFor(program, {
        ...extra,
        tokens: hostTensor('int32', tokens, [b, t]),
        positions: hostTensor('int32', positionIds(mask, b, t, s), [b, t]),
        attn_bias: hostTensor('float32', attentionBias(mask, b, t, s), [b, 1, t, s]),
      }),
    );
  }

  /**
   * Continues each prompt (token ids) until it writes a stop token (an id, or any of a list: a
   * tokenizer's stopIds) or maxNewTokens. With `useCache` false every step re-reads the whole
   * sequence (slow; it exists to check the cache).
   */
  async generate(
    prompts: number[][],
    opts: SamplingOptions,
    stop: number | readonly number[],
    rng: Rng,
    useCache = true,
  ): Promise<Generation[]> {
    return this.continue(prompts, 1, opts, stop, rng, useCache);
  }

  /**
   * `copies` continuations of each prompt, grouped (prompt 0's first), drawn as generate() draws them
   * for the prompts repeated. Where the KV cache lives on the host, each prompt's prefill runs once
   * and its keys/values are shared by its copies; a device-side cache prefills every copy.
   */
  generateGroups(
    prompts: number[][],
    copies: number,
    opts: SamplingOptions,
    stop: number | readonly number[],
    rng: Rng,
  ): Promise<Generation[]> {
    if (this.hostCache) return this.continue(prompts, copies, opts, stop, rng, true);
    const repeated = prompts.flatMap((p) => Array<number[]>(copies).fill(p));
    return this.continue(repeated, 1, opts, stop, rng, true);
  }

  private async continue(
    unique: number[][],
    copies: number,
    opts: SamplingOptions,
    stop: number | readonly number[],
    rng: Rng,
    useCache: boolean,
  ): Promise<Generation[]> {
    const stopIds = new Set(typeof stop === 'number' ? [stop] : stop);
    const prompts = unique.flatMap((p) => Array<number[]>(copies).fill(p));
    const width = Math.max(...prompts.map((p) => p.length));
    if (prompts.some((p) => p.length === 0)) throw new Error('generate: empty prompt');
    if (width >= this.cfg.nPositions)
      throw new Error(`generate: prompt of ${width} tokens does not fit the context of ${this.cfg.nPositions}`);
    const maxNew = Math.min(opts.maxNewTokens, this.cfg.nPositions - width);
    const ids = prompts.map((p) => [...Array(width - p.length).fill(this.padId), ...p]);
    let mask: Float32Array = Float32Array.from(
      prompts.flatMap((p) => [...Array(width - p.length).fill(0), ...Array(p.length).fill(1)]),
    );
    const out: Generation[] = prompts.map(() => ({ tokens: [], finished: false }));

    const greedy = opts.temperature === 0;
    const { prefill, decode } = greedy ? this.greedy : this.sampling;
    const temperature: Record<string, ort.Tensor> = greedy
      ? {}
      : { temperature: hostTensor('float32', Float32Array.of(opts.temperature), []) };
    // The prefill reads each distinct prompt once (copies share it through the cache).
    let res = await this.forward(
      prefill,
      ids.filter((_, b) => b % copies === 0),
      mask.filter((_, i) => Math.floor(i / width) % copies === 0),
      width,
      temperature,
    );
    const cache = useCache && this.hostCache ? HostKvCache.fromPrefill(res, width + maxNew, copies) : undefined;
    for (let step = 0; ; step++) {
      // The prefill's rows are the distinct prompts: continuation b reads row b / copies.
      this.draw(res, out, ids, step === 0 ? copies : 1, opts, rng, stopIds);
      if (step + 1 >= maxNew || out.every((g) => g.finished)) break;
      mask = appendColumn(mask, prompts.length);
      const past = !useCache ? undefined : cache ? cache.past() : presentAsPast(res);
      res = past
        ? await this.forward(decode, ids, mask, 1, { ...past, ...temperature })
        : await this.forward(prefill, ids, mask, ids[0].length, temperature);
      if (cache) cache.append(res);
      else if (past) for (const t of Object.values(past)) if (t.location === 'gpu-buffer') t.dispose();
    }
    for (const t of Object.values(res)) if (t.location === 'gpu-buffer') t.dispose();
    return out;
  }

  /**
   * Appends each row's next token: the argmax a greedy program outputs, or a draw from the
   * probabilities of the others; row b reads output row b / `share`. Finished rows get padding.
   */
  private draw(
    res: Record<string, ort.Tensor>,
    out: Generation[],
    ids: number[][],
    share: number,
    opts: SamplingOptions,
    rng: Rng,
    stopIds: Set<number>,
  ): void {
    const vocab = this.cfg.vocabSize;
    const chosen = res.next?.data as BigInt64Array | undefined;
    const probs = res.probs?.data as Float32Array | undefined;
    out.forEach((g, b) => {
      const r = Math.floor(b / share);
      const next = g.finished
        ? this.padId
        : chosen
          ? Number(chosen[r])
          : sampleProbs(probs!.subarray(r * vocab, (r + 1) * vocab), opts, rng);
      ids[b].push(next);
      if (g.finished) return;
      g.tokens.push(next);
      g.finished = stopIds.has(next);
    });
  }

  async release(): Promise<void> {
    for (const p of [this.sampling, this.greedy]) {
      await p.prefill.release();
      await p.decode.release();
    }
  }
}

function presentAsPast(res: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
  return Object.fromEntries(
    Object.entries(res)
      .filter(([k]) => k.startsWith('present.'))
      .map(([k, v]) => [pastName(k), v]),
  );
}

/** Adds one real-token column to a [B, S] mask. */
function appendColumn(mask: Float32Array, batch: number): Float32Array {
  const s = mask.length / batch;
  const next = new Float32Array(batch * (s + 1));
  for (let b = 0; b < batch; b++) {
    next.set(mask.subarray(b * s, (b + 1) * s), b * (s + 1));
    next[b * (s + 1) + s] = 1;
  }
  return next;
}

/** Draws a token from one row of logits with temperature, top-k and top-p. */
export function sample(logits: Float32Array, opts: Omit<SamplingOptions, 'maxNewTokens'>, rng: Rng): number {
  if (opts.temperature === 0) return argmaxOf(logits);
  let top = -Infinity;
  for (let i = 0; i < logits.length; i++) top = Math.max(top, logits[i]);
  const probs = logits.map((l) => Math.exp((l - top) / opts.temperature));
  return sampleProbs(probs, opts, rng);
}

/**
 * Draws a token from one row of probabilities (softmax(logits / temperature), normalised or not),
 * keeping the top-k tokens and/or the top-p probability mass.
 */
export function sampleProbs(probs: Float32Array, opts: Omit<SamplingOptions, 'maxNewTokens'>, rng: Rng): number {
  if ((opts.topK > 0 && opts.topK < probs.length) || opts.topP < 1) return sampleTruncated(probs, opts, rng);
  // Every token is a candidate: one pass over the typed array.
  let total = 0;
  for (let i = 0; i < probs.length; i++) total += probs[i];
  let u = rng.next() * total;
  for (let i = 0; i < probs.length; i++) if ((u -= probs[i]) < 0) return i;
  return probs.length - 1;
}

/** sampleProbs() among the top-k tokens and/or the top-p probability mass. */
function sampleTruncated(all: Float32Array, opts: Omit<SamplingOptions, 'maxNewTokens'>, rng: Rng): number {
  let ids = Array.from(all.keys());
  if (opts.topK > 0 && opts.topK < ids.length) ids = ids.sort((a, b) => all[b] - all[a]).slice(0, opts.topK);
  let probs = ids.map((i) => all[i]);
  if (opts.topP < 1) {
    const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a]);
    const total = probs.reduce((a, b) => a + b, 0);
    let mass = 0;
    const keep = order.filter((k) => (mass += probs[k] / total) - probs[k] / total < opts.topP);
    ids = keep.map((k) => ids[k]);
    probs = keep.map((k) => probs[k]);
  }
  let u = rng.next() * probs.reduce((a, b) => a + b, 0);
  for (let k = 0; k < ids.length; k++) if ((u -= probs[k]) < 0) return ids[k];
  return ids[ids.length - 1];
}

function argmaxOf(xs: Float32Array): number {
  let best = 0,
    top = xs[0];
  for (let i = 1; i < xs.length; i++) {
    if (xs[i] > top) {
      top = xs[i];
      best = i;
    }
  }
  return best;
}

/**
 * Batched sampling with a KV cache: one prefill run over the left-padded prompts, then one decode
 * run per new token that attends to the cached keys/values (kept in host memory between runs, or
 * on the device where the provider keeps state there). The graphs pick the tokens themselves
 * (./sampling.ts) and have symbolic batch and length dims, so each sampling mode's pair is built
 * and loaded once, when first used, and serves every shape. Rows that finish leave the batch
 * (with a host-side cache, or none): later runs decode only the rows still writing.
 */
import * as ort from 'onnxruntime-node';
import { concat, reshape, slice } from '../engine/ops';
import { toOnnx } from '../engine/onnx';
import { Program, Runtime, hostTensor } from '../engine/runtime';
import { State } from '../engine/state';
import { Tensor } from '../engine/tensor';
import { KV } from '../model/architecture';
import { ModelConfig } from '../model/config';
import { kvShape, lastTokenLogits, pastInputs, sequenceInputs, transformer } from '../model/decoder';
import { AdapterPlace, modelInputs } from '../model/lora';
import { attentionBias, positionIds } from '../model/masks';
import { Rng } from '../util/rng';
import { SamplingKnobs, SamplingMode, samplingFeeds, samplingHead, samplingMode, uniforms } from './sampling';

export interface SamplingOptions extends SamplingKnobs {
  maxNewTokens: number;
}

export const GREEDY: SamplingKnobs = { temperature: 0, topK: 0, topP: 1 };

export interface Generation {
  /** New tokens, ending with a stop token when `finished`. */
  tokens: number[];
  /** Each token's log-prob under softmax(logits / temperature), as drawn (none when greedy). */
  logprobs: number[];
  finished: boolean;
}

/**
 * Outputs the tokens drawn from the last position (./sampling.ts's head for `mode`) and every
 * layer's keys/values [B, nKvHead, S, headDim]. A prefill run's S are its T positions; a decode
 * run (`past`) reads one new position per row and outputs it alone (`appendedOnHost`: the host
 * appends it to its cache) or the cache with it appended (a cache kept on the device).
 */
function lastTokenGraph(
  cfg: ModelConfig,
  model: { prefix: string; lora?: AdapterPlace },
  mode: SamplingMode,
  past?: KV[],
  appendedOnHost = false,
) {
  const p = modelInputs(cfg, 'lm', model.prefix, model.lora);
  const inp = past ? sequenceInputs('P+1', 'B', 1) : sequenceInputs('T');
  const { hidden, present } = transformer(p, cfg, inp, past);
  const last = reshape(slice(hidden, 1, -1), [hidden.shape[0], cfg.nEmbd]);
  const outputs: Record<string, Tensor> = samplingHead((h) => lastTokenLogits(p, cfg, h), last, mode);
  const whole = (cached: Tensor | undefined, added: Tensor) =>
    cached && !appendedOnHost ? concat([cached, added], 2) : added;
  present.forEach((kv, i) => {
    outputs[`present.${i}.key`] = whole(past?.[i].key, kv.key);
    outputs[`present.${i}.value`] = whole(past?.[i].value, kv.value);
  });
  return toOnnx(outputs, `${past ? 'decode' : 'prefill'}_${mode}`);
}

/**
 * Every layer's keys and values on the host, position-major ([S, B, H, hd] in a buffer sized for
 * the whole generation): the S positions so far are a contiguous prefix, fed to the decode graph
 * without a copy, and each decode run's new position is appended in place. A cache that the
 * session outputs whole every token costs a copy of all of it out of onnxruntime per token.
 */
class HostKvCache {
  private length = 0;
  /** Rows (B) and floats per position (B · H · hd). */
  private rows: number;
  private slotSize: number;

  private constructor(
    private readonly buffers: Map<string, Float32Array>,
    rows: number,
    /** Floats per row and position: H · hd. */
    private readonly rowSize: number,
    private readonly heads: number,
  ) {
    this.rows = rows;
    this.slotSize = rows * rowSize;
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
    const cache = new HostKvCache(buffers, rows, h * hd, h);
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
    const dims = [this.length, this.rows, this.heads, this.rowSize / this.heads];
    const feed = (buf: Float32Array) => hostTensor('float32', buf.subarray(0, this.length * this.slotSize), dims);
    return Object.fromEntries([...this.buffers].map(([n, buf]) => [n, feed(buf)]));
  }

  /** Appends a decode run's new position (`present.*` [B, H, 1, hd]: the layout of one slot). */
  append(res: Record<string, ort.Tensor>): void {
    for (const [n, buf] of this.buffers)
      buf.set(res[n.replace('past.', 'present.')].data as Float32Array, this.length * this.slotSize);
    this.length++;
  }

  /**
   * Keeps only the rows `keep` (ascending), moved down in place: each row lands at or before
   * where it was read from, so nothing is overwritten before it is read.
   */
  keepRows(keep: number[]): void {
    const size = this.rowSize;
    for (const buf of this.buffers.values())
      for (let pos = 0; pos < this.length; pos++)
        keep.forEach((row, i) => {
          const from = (pos * this.rows + row) * size;
          buf.copyWithin((pos * keep.length + i) * size, from, from + size);
        });
    this.rows = keep.length;
    this.slotSize = keep.length * size;
  }
}

const pastName = (present: string) => present.replace('present.', 'past.');

/** A prefill program and a KV-cache decode program. */
interface Programs {
  prefill: Program;
  decode: Program;
}

export class Generator {
  /** Each sampling mode's programs, loaded when first used. */
  private readonly programs = new Map<SamplingMode, Promise<Programs>>();

  private constructor(
    private readonly runtime: Runtime,
    private readonly cfg: ModelConfig,
    private readonly state: State,
    private readonly model: { prefix: string; lora?: AdapterPlace },
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
    return new Generator(runtime, cfg, state, { prefix, lora }, padId, !runtime.keepsStateOnDevice);
  }

  private programsFor(mode: SamplingMode): Promise<Programs> {
    const loaded = this.programs.get(mode);
    if (loaded) return loaded;
    const { cfg, model, hostCache, runtime } = this;
    const cache = hostCache
      ? []
      : Array.from({ length: kvShape(cfg).layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
    const load = async (): Promise<Programs> => ({
      prefill: await runtime.load(lastTokenGraph(cfg, model, mode), cache),
      decode: await runtime.load(lastTokenGraph(cfg, model, mode, pastInputs(cfg, hostCache), hostCache), cache),
    });
    const programs = load();
    this.programs.set(mode, programs);
    return programs;
  }

  /**
   * Runs `program` over the last T of the S positions in `ids`/`mask` ([B, S] each), with `extra`
   * feeds (the cache, the sampling knobs and draws).
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
   * for the prompts repeated. Where the KV cache lives on the host, each prompt's prefill runs once,
   * draws its copies' first tokens, and its keys/values are shared by its copies; a device-side
   * cache prefills every copy.
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
    if (unique.some((p) => p.length === 0)) throw new Error('generate: empty prompt');
    const width = Math.max(...unique.map((p) => p.length));
    if (width >= this.cfg.nPositions)
      throw new Error(`generate: prompt of ${width} tokens does not fit the context of ${this.cfg.nPositions}`);
    const maxNew = Math.min(opts.maxNewTokens, this.cfg.nPositions - width);
    const padded = unique.map((p) => [...Array(width - p.length).fill(this.padId), ...p]);
    const prefillMask = Float32Array.from(
      unique.flatMap((p) => [...Array(width - p.length).fill(0), ...Array(p.length).fill(1)]),
    );
    // Continuation b (of prompt b / copies): its tokens so far, and what it has written.
    const seqs = padded.flatMap((p) => Array.from({ length: copies }, () => [...p]));
    const out: Generation[] = seqs.map(() => ({ tokens: [], logprobs: [], finished: false }));

    const mode = samplingMode(opts, this.cfg.vocabSize);
    const { prefill, decode } = await this.programsFor(mode);
    const knobs = samplingFeeds(opts, mode, this.cfg.vocabSize);
    const draws = (drawing: boolean[], n: number) => (mode === 'greedy' ? {} : uniforms(rng, drawing, n));
    // The prefill reads each distinct prompt once and draws each of its copies' first token.
    let res = await this.forward(prefill, padded, prefillMask, width, {
      ...knobs,
      ...draws(Array<boolean>(unique.length).fill(true), copies),
    });
    const cache = useCache && this.hostCache ? HostKvCache.fromPrefill(res, width + maxNew, copies) : undefined;
    // Finished rows leave the batch, except from a cache kept on the device.
    const compact = !useCache || !!cache;
    /** The continuation each batch row holds. */
    let rows = [...seqs.keys()];
    let mask = repeatRows(prefillMask, width, copies);
    for (let step = 0; ; step++) {
      this.draw(res, out, seqs, rows, stopIds);
      if (step + 1 >= maxNew || out.every((g) => g.finished)) break;
      const keep = [...rows.keys()].filter((i) => !out[rows[i]].finished);
      if (compact && keep.length < rows.length) {
        mask = selectRows(mask, rows.length, keep);
        cache?.keepRows(keep);
        rows = keep.map((i) => rows[i]);
      }
      mask = appendColumn(mask, rows.length);
      const ids = rows.map((b) => seqs[b]);
      const feeds = {
        ...knobs,
        ...draws(
          rows.map((b) => !out[b].finished),
          1,
        ),
      };
      const past = !useCache ? undefined : cache ? cache.past() : presentAsPast(res);
      res = past
        ? await this.forward(decode, ids, mask, 1, { ...past, ...feeds })
        : await this.forward(prefill, ids, mask, ids[0].length, feeds);
      if (cache) cache.append(res);
      else if (past) for (const t of Object.values(past)) if (t.location === 'gpu-buffer') t.dispose();
    }
    for (const t of Object.values(res)) if (t.location === 'gpu-buffer') t.dispose();
    return out;
  }

  /**
   * Appends the token each batch row drew (row i holds continuation rows[i]); the programs output
   * one token per row, or per prompt where a greedy prefill serves every copy. Finished rows still
   * in the batch get padding.
   */
  private draw(
    res: Record<string, ort.Tensor>,
    out: Generation[],
    seqs: number[][],
    rows: number[],
    stopIds: Set<number>,
  ): void {
    const next = res.next.data as ArrayLike<number | bigint>;
    const logprob = res.logprob?.data as Float32Array | undefined;
    const share = rows.length / next.length;
    rows.forEach((b, i) => {
      const g = out[b],
        r = Math.floor(i / share);
      const token = g.finished ? this.padId : Number(next[r]);
      seqs[b].push(token);
      if (g.finished) return;
      g.tokens.push(token);
      if (logprob) g.logprobs.push(logprob[r]);
      g.finished = stopIds.has(token);
    });
  }

  async release(): Promise<void> {
    for (const programs of this.programs.values()) {
      const { prefill, decode } = await programs;
      await prefill.release();
      await decode.release();
    }
    this.programs.clear();
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

/** Each row of a [B, S] mask `copies` times in a row. */
function repeatRows(mask: Float32Array, s: number, copies: number): Float32Array {
  if (copies === 1) return mask;
  const rows = mask.length / s;
  return selectRows(
    mask,
    rows,
    Array.from({ length: rows * copies }, (_, i) => Math.floor(i / copies)),
  );
}

/** The rows `pick` of a [B, S] mask. */
function selectRows(mask: Float32Array, batch: number, pick: number[]): Float32Array {
  const s = mask.length / batch;
  const next = new Float32Array(pick.length * s);
  pick.forEach((row, i) => next.set(mask.subarray(row * s, (row + 1) * s), i * s));
  return next;
}

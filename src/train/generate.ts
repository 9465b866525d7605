/**
 * Batched sampling with a KV cache: one prefill run over the left-padded prompts, then one decode
 * run per new token that attends to the cached keys/values. Both graphs have symbolic batch and
 * length dims, so each is built and loaded once and serves every shape.
 */
import * as ort from 'onnxruntime-node';
import { reshape, slice } from '../engine/ops';
import { toOnnx } from '../engine/onnx';
import { Program, Runtime, hostTensor } from '../engine/runtime';
import { State } from '../engine/step';
import { Tensor } from '../engine/tensor';
import { GPTConfig } from '../model/config';
import { KV, lmHead, paramInputs, pastInputs, sequenceInputs, transformer } from '../model/gpt2';
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
  /** New tokens, ending with EOS when `finished`. */
  tokens: number[];
  finished: boolean;
}

/** Outputs: logits of the last position [B, V] and every layer's keys/values. */
function lastLogitsGraph(cfg: GPTConfig, prefix: string, keys: string, past?: KV[]) {
  const p = paramInputs(cfg, 'lm', prefix);
  const inp = sequenceInputs(keys);
  const { hidden, present } = transformer(p, cfg, inp.tokens, inp.positions, inp.attnBias, past);
  const last = reshape(slice(hidden, 1, -1), [hidden.shape[0], cfg.nEmbd]);
  const outputs: Record<string, Tensor> = { logits: lmHead(p, last) };
  present.forEach((kv, i) => {
    outputs[`present.${i}.key`] = kv.key;
    outputs[`present.${i}.value`] = kv.value;
  });
  return toOnnx(outputs, past ? 'decode' : 'prefill');
}

export class Generator {
  private constructor(
    private readonly cfg: GPTConfig,
    private readonly state: State,
    private readonly prefill: Program,
    private readonly decode: Program,
    private readonly padId: number,
  ) {}

  /** `state` holds the model's parameters under their HF names, each preceded by `prefix`. */
  static async create(runtime: Runtime, cfg: GPTConfig, state: State, padId: number, prefix = ''): Promise<Generator> {
    const cache = Array.from({ length: cfg.nLayer }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
    const prefill = await runtime.load(lastLogitsGraph(cfg, prefix, 'T'), cache);
    const decode = await runtime.load(lastLogitsGraph(cfg, prefix, 'P+T', pastInputs(cfg)), cache);
    return new Generator(cfg, state, prefill, decode, padId);
  }

  private paramFeeds(program: Program): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const i of program.model.inputs) if (this.state.has(i.name)) feeds[i.name] = this.state.get(i.name);
    return feeds;
  }

  /** Runs `program` over the last T of the S positions in `ids`/`mask` ([B, S] each). */
  private async forward(program: Program, ids: number[][], mask: Float32Array, t: number, past: Record<string, ort.Tensor> = {}) {
    const b = ids.length, s = ids[0].length;
    const tokens = Int32Array.from(ids.flatMap((row) => row.slice(s - t)));
    return program.run({
      ...this.paramFeeds(program),
      ...past,
      tokens: hostTensor('int32', tokens, [b, t]),
      positions: hostTensor('int32', positionIds(mask, b, t, s), [b, t]),
      attn_bias: hostTensor('float32', attentionBias(mask, b, t, s), [b, 1, t, s]),
    });
  }

  /**
   * Continues each prompt (token ids) until EOS or maxNewTokens. With `useCache` false every step
   * re-reads the whole sequence (slow; it exists to check the cache).
   */
  async generate(prompts: number[][], opts: SamplingOptions, eosId: number, rng: Rng, useCache = true): Promise<Generation[]> {
    const width = Math.max(...prompts.map((p) => p.length));
    if (prompts.some((p) => p.length === 0)) throw new Error('generate: empty prompt');
    if (width >= this.cfg.nPositions) throw new Error(`generate: prompt of ${width} tokens does not fit the context of ${this.cfg.nPositions}`);
    const maxNew = Math.min(opts.maxNewTokens, this.cfg.nPositions - width);
    const ids = prompts.map((p) => [...Array(width - p.length).fill(this.padId), ...p]);
    let mask: Float32Array = Float32Array.from(prompts.flatMap((p) => [...Array(width - p.length).fill(0), ...Array(p.length).fill(1)]));
    const out: Generation[] = prompts.map(() => ({ tokens: [], finished: false }));

    let res = await this.forward(this.prefill, ids, mask, width);
    for (let step = 0; ; step++) {
      const logits = res.logits.data as Float32Array;
      const vocab = logits.length / prompts.length;
      out.forEach((g, b) => {
        const next = g.finished ? this.padId : sample(logits.subarray(b * vocab, (b + 1) * vocab), opts, rng);
        ids[b].push(next);
        if (g.finished) return;
        g.tokens.push(next);
        g.finished = next === eosId;
      });
      if (step + 1 >= maxNew || out.every((g) => g.finished)) break;
      mask = appendColumn(mask, prompts.length);
      const past = useCache ? presentAsPast(res) : undefined;
      res = past ? await this.forward(this.decode, ids, mask, 1, past) : await this.forward(this.prefill, ids, mask, ids[0].length);
      if (past) for (const t of Object.values(past)) if (t.location === 'gpu-buffer') t.dispose();
    }
    for (const t of Object.values(res)) if (t.location === 'gpu-buffer') t.dispose();
    return out;
  }

  async release(): Promise<void> {
    await this.prefill.release();
    await this.decode.release();
  }
}

function presentAsPast(res: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
  return Object.fromEntries(Object.entries(res).filter(([k]) => k.startsWith('present.')).map(([k, v]) => [k.replace('present.', 'past.'), v]));
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
  if (opts.temperature === 0) return argmax(logits);
  let ids = [...logits.keys()];
  if (opts.topK > 0 && opts.topK < ids.length) ids = ids.sort((a, b) => logits[b] - logits[a]).slice(0, opts.topK);
  const top = ids.reduce((m, i) => Math.max(m, logits[i]), -Infinity);
  let probs = ids.map((i) => Math.exp((logits[i] - top) / opts.temperature));
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

function argmax(xs: Float32Array): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

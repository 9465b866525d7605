/**
 * The pieces decoder-only transformers are built from, each with the parameters it reads declared
 * beside it under the module name it is given (HF's names: "h.0.ln_1" → h.0.ln_1.weight and .bias).
 * An architecture (./gpt2.ts, ./llama.ts) lists its modules' parameters and runs the same modules forward.
 */
import {
  cast,
  concat,
  dense,
  expand,
  gather,
  layerNormalization,
  matmul,
  neg,
  slice,
  softmax,
  transpose,
  unsqueeze,
} from '../engine/ops';
import { recomputed } from '../engine/autodiff';
import { cos, sin } from '../engine/ops-trig';
import { gelu, linear as affine, rmsNorm as rmsNormalize, silu } from '../engine/nn';
import { Dim, Tensor, constant } from '../engine/tensor';
import type { KV, ParamSpec, Params } from './architecture';

/** The standard deviation of weights drawn at initialisation (HF's initializer_range). */
export const INIT_STD = 0.02;

/** Query heads, key/value heads (fewer with grouped-query attention) and the width of each. */
export interface AttentionHeads {
  nHead: number;
  nKvHead: number;
  headDim: number;
}

// ---------------------------------------------------------------- parameters

/** An embedding table [rows, d], drawn from N(0, INIT_STD). */
export function embeddingParams(name: string, rows: number, d: number): ParamSpec[] {
  return [{ name: `${name}.weight`, shape: [rows, d], init: { normal: INIT_STD } }];
}

/** LayerNorm's scale (ones) and shift (zeros). */
export function layerNormParams(name: string, d: number): ParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [d], init: 'ones' },
    { name: `${name}.bias`, shape: [d], init: 'zeros' },
  ];
}

/** A projection stored [in, out] (GPT-2's Conv1D), its weight drawn from N(0, std), its bias zeros. */
export function conv1dParams(name: string, nIn: number, nOut: number, std = INIT_STD): ParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [nIn, nOut], init: { normal: std }, layout: 'conv1d' },
    { name: `${name}.bias`, shape: [nOut], init: 'zeros' },
  ];
}

/** RMSNorm's scale (ones). */
export function rmsNormParams(name: string, d: number): ParamSpec[] {
  return [{ name: `${name}.weight`, shape: [d], init: 'ones' }];
}

/** A torch.nn.Linear, its weight stored [out, in] and drawn from N(0, INIT_STD), its bias (if any) zeros. */
export function linearParams(name: string, nIn: number, nOut: number, bias: boolean): ParamSpec[] {
  const weight: ParamSpec = {
    name: `${name}.weight`,
    shape: [nOut, nIn],
    init: { normal: INIT_STD },
    layout: 'linear',
  };
  return bias ? [weight, { name: `${name}.bias`, shape: [nOut], init: 'zeros' }] : [weight];
}

// ---------------------------------------------------------------- forward

/** Rows of the table `name` for each id. */
export function embedding(p: Params, name: string, ids: Tensor): Tensor {
  return gather(p[`${name}.weight`], ids);
}

export function layerNorm(x: Tensor, p: Params, name: string, eps: number): Tensor {
  return layerNormalization(x, p[`${name}.weight`], p[`${name}.bias`], eps);
}

export function rmsNorm(x: Tensor, p: Params, name: string, eps: number): Tensor {
  return rmsNormalize(x, p[`${name}.weight`], eps);
}

/** x @ weight + bias, weight stored [in, out]; plus the module's LoRA path when it has one. */
export function conv1d(x: Tensor, p: Params, name: string): Tensor {
  return withLora(affine(x, p[`${name}.weight`], p[`${name}.bias`]), x, p, name);
}

/** x @ weightᵀ (+ bias, when the module has one), weight stored [out, in] (torch.nn.Linear); plus its LoRA path. */
export function linear(x: Tensor, p: Params, name: string): Tensor {
  return withLora(affine(x, p[`${name}.weight`], p[`${name}.bias`], true), x, p, name);
}

/** PEFT's names of a module's LoRA matrices, A [r, in] and B [out, r], whatever the weight's layout. */
export const loraA = (module: string) => `${module}.lora_A.weight`;
export const loraB = (module: string) => `${module}.lora_B.weight`;
/** The graph constant that carries a module's LoRA scaling (lora_alpha / r). */
export const loraScalingKey = (module: string) => `${module}.lora_scaling`;

/** y + scaling · (x Aᵀ) Bᵀ when `p` holds the module's LoRA matrices (./lora.ts), else y. */
function withLora(y: Tensor, x: Tensor, p: Params, name: string): Tensor {
  const a = p[loraA(name)];
  if (!a) return y;
  const down = dense(x, a, true); // [..., r]
  return y.add(dense(down, p[loraB(name)], true).mul(p[loraScalingKey(name)]));
}

/** The GELU (tanh) feed-forward: `proj`(gelu(`fc`(x))). */
export function geluMlp(x: Tensor, p: Params, fc: string, proj: string): Tensor {
  return conv1d(gelu(conv1d(x, p, fc)), p, proj);
}

/** The SwiGLU feed-forward of Llama's MLP: down_proj(silu(gate_proj(x)) · up_proj(x)). */
export function swigluMlp(x: Tensor, p: Params, name: string): Tensor {
  const hidden = silu(linear(x, p, `${name}.gate_proj`)).mul(linear(x, p, `${name}.up_proj`));
  return linear(hidden, p, `${name}.down_proj`);
}

/** cos and sin of each position's rotary angles, [B, 1, T, headDim], to rotate queries and keys with. */
export interface Rotary {
  cos: Tensor;
  /** With its first half negated: the minus of rotate_half. */
  sin: Tensor;
}

/**
 * The rotary embedding of positions [B, T] (int) as HF's: angles position · inv_freq in float32,
 * the same angles in both halves of a head (cat(freqs, freqs)).
 */
export function rotaryEmbedding(positions: Tensor, invFreq: Float32Array): Rotary {
  const angles = unsqueeze(cast(positions, 'float32'), -1).mul(constant(invFreq, 'float32')); // [B, T, hd/2]
  const c = cos(angles),
    s = sin(angles);
  const perHead = (halves: Tensor[]) => unsqueeze(concat(halves, -1), 1);
  return { cos: perHead([c, c]), sin: perHead([neg(s), s]) };
}

/** x [B, H, T, hd] rotated: x cos + rotate_half(x) sin, where rotate_half(x) = [-x2, x1] for halves x1, x2. */
export function applyRotary(x: Tensor, rotary: Rotary): Tensor {
  const half = (x.shape[3] as number) / 2;
  const swapped = concat([slice(x, 3, half), slice(x, 3, 0, half)], 3); // [x2, x1]; the minus is in rotary.sin
  return x.mul(rotary.cos).add(swapped.mul(rotary.sin));
}

/** x [B, T, n·headDim] as n heads, [B, n, T, headDim] (for one position, a reshape: no data moves). */
export function splitHeads(x: Tensor, n: number, headDim: number): Tensor {
  const [b, t] = x.shape;
  if (t === 1) return x.reshape([b, n, 1, headDim]);
  return transpose(x.reshape([b, t, n, headDim]), [0, 2, 1, 3]);
}

/** splitHeads undone: y [B, n, T, headDim] → [B, T, n·headDim]. */
function mergeHeads(y: Tensor): Tensor {
  const [b, n, t, headDim] = y.shape as [Dim, number, Dim, number];
  const width = n * headDim;
  return t === 1 ? y.reshape([b, 1, width]) : transpose(y, [0, 2, 1, 3]).reshape([b, t, width]);
}

/**
 * Scaled dot-product attention of queries q [B, nHead, T, hd] over keys and values [B, nKvHead, T, hd],
 * and over the cached ones in `past` when given, under the additive bias [B, 1, T, S] (S = P + T:
 * the cached positions, then the new ones). Each KV head serves nHead / nKvHead consecutive query
 * heads (as HF's repeat_kv). Returns the heads merged back, [B, T, nHead·hd], and this run's keys
 * and values (what a cache adds).
 */
export function causalAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  heads: AttentionHeads,
  bias: Tensor,
  past?: KV,
): { y: Tensor; kv: KV } {
  const y = past ? attentionOverCache(q, k, v, heads, bias, past) : attention(q, k, v, heads, bias);
  return { y: mergeHeads(y), kv: { key: k, value: v } };
}

/** softmax(q kᵀ / √hd + bias) v, [B, nHead, T, hd], each KV head repeated to its query heads. */
function attention(q: Tensor, k: Tensor, v: Tensor, heads: AttentionHeads, bias: Tensor): Tensor {
  const groups = heads.nHead / heads.nKvHead;
  const scores = matmul(q, transpose(repeatKv(k, groups), [0, 1, 3, 2]))
    .mul(1 / Math.sqrt(heads.headDim))
    .add(bias); // [B, H, T, S]
  return matmul(softmax(scores, -1), repeatKv(v, groups));
}

/**
 * attention() over the cached keys and values and the new ones, without concatenating them: the
 * scores against each are computed apart and softmaxed together, and the weights split again, so
 * the cache ([B, nKvHead, P, hd], or a transposed view of how the host keeps it) is only read,
 * once, per run. A KV head's query heads are its rows (no repeated keys). T must be a number.
 */
function attentionOverCache(q: Tensor, k: Tensor, v: Tensor, heads: AttentionHeads, bias: Tensor, past: KV): Tensor {
  const [b, , t, hd] = q.shape;
  if (typeof t !== 'number')
    throw new Error(`attention over a KV cache needs a fixed number of new positions, not "${t}"`);
  const groups = heads.nHead / heads.nKvHead,
    rows = groups * t;
  const byKvHead = (x: Tensor) => x.reshape([b, heads.nKvHead, rows, hd]); // [B, nKv, groups·T, hd]
  const queries = byKvHead(q);
  const [, , , s] = bias.shape;
  const biasRows =
    groups === 1 || t === 1 ? bias : expand(unsqueeze(bias, 2), [b, 1, groups, t, s]).reshape([b, 1, rows, s]);
  const scoresAgainst = (keys: Tensor) =>
    matmul(queries, transpose(keys, [0, 1, 3, 2])).mul(1 / Math.sqrt(hd as number));
  const scores = concat([scoresAgainst(past.key), scoresAgainst(k)], 3).add(biasRows); // [B, nKv, groups·T, P + T]
  const weights = softmax(scores, -1);
  const y = matmul(slice(weights, 3, 0, -t), past.value).add(matmul(slice(weights, 3, -t), v));
  return y.reshape([b, heads.nHead, t, hd]);
}

/**
 * The residual stream through `n` layers, each given x, its index and its cached keys and values;
 * the final x and every layer's keys and values. With `checkpointed`, each layer is recomputed in
 * the backward pass (engine/autodiff.ts's `recomputed`) and no keys and values come back.
 */
export function decoderLayers(
  x: Tensor,
  n: number,
  layer: (x: Tensor, i: number, past?: KV) => { x: Tensor; kv: KV },
  past?: KV[],
  checkpointed = false,
): { x: Tensor; present: KV[] } {
  const present: KV[] = [];
  for (let i = 0; i < n; i++) {
    if (checkpointed) {
      x = recomputed((h) => layer(h, i).x, x);
      continue;
    }
    const out = layer(x, i, past?.[i]);
    x = out.x;
    present.push(out.kv);
  }
  return { x, present };
}

/** [B, nKv, S, hd] → [B, nKv·times, S, hd], each head repeated `times` times in place. */
function repeatKv(t: Tensor, times: number): Tensor {
  if (times === 1) return t;
  const [b, n, s, hd] = t.shape;
  return expand(unsqueeze(t, 2), [b, n, times, s, hd]).reshape([b, (n as number) * times, s, hd]);
}

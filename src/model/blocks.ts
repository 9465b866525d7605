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
import { Tensor, constant } from '../engine/tensor';
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

/** x [B, T, n·headDim] as n heads, [B, n, T, headDim]. */
export function splitHeads(x: Tensor, n: number, headDim: number): Tensor {
  return transpose(x.reshape([x.shape[0], x.shape[1], n, headDim]), [0, 2, 1, 3]);
}

/**
 * Scaled dot-product attention of queries q [B, nHead, T, hd] over keys and values [B, nKvHead, T, hd],
 * appended to `past` when given, under the additive bias [B, 1, T, S]. Each KV head serves
 * nHead / nKvHead consecutive query heads (it is repeated to them in the graph, as HF's repeat_kv).
 * Returns the heads merged back, [B, T, nHead·hd], and the keys and values to cache.
 */
export function causalAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  heads: AttentionHeads,
  bias: Tensor,
  past?: KV,
): { y: Tensor; kv: KV } {
  let key = k,
    value = v;
  if (past) {
    key = concat([past.key, key], 2);
    value = concat([past.value, value], 2);
  }
  const groups = heads.nHead / heads.nKvHead;
  const keys = repeatKv(key, groups),
    values = repeatKv(value, groups);
  const scores = matmul(q, transpose(keys, [0, 1, 3, 2]))
    .mul(1 / Math.sqrt(heads.headDim))
    .add(bias); // [B, H, T, S]
  const y = matmul(softmax(scores, -1), values); // [B, H, T, hd]
  const merged = transpose(y, [0, 2, 1, 3]).reshape([q.shape[0], q.shape[2], heads.nHead * heads.headDim]);
  return { y: merged, kv: { key, value } };
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

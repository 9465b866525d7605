/**
 * GPT-2 as Hugging Face's GPT2LMHeadModel computes it, written on the engine's symbolic tensors:
 * learned position embeddings, pre-LayerNorm blocks, fused qkv projection, causal attention,
 * GELU (tanh approximation), final LayerNorm, LM head tied to the token embedding.
 * Parameters are graph inputs named exactly as in HF checkpoints.
 *
 * Masking is one additive bias [B, 1, T, S] fed by the host (0 = may attend, -1e9 = may not),
 * which covers causality, left padding and a KV cache with the same graph code.
 */
import { concat, gather, matmul, reshape, slice, softmax, transpose } from '../engine/ops';
import { gelu, layerNorm, linear } from '../engine/nn';
import { Tensor, input } from '../engine/tensor';
import { Rng } from '../util/rng';
import { GPTConfig, Head, gptParamShapes } from './config';

export type Params = Record<string, Tensor>;

/** Keys and values of one layer, [B, H, S, head_dim]. */
export interface KV {
  key: Tensor;
  value: Tensor;
}

/**
 * One graph input per parameter, keyed by HF name. `prefix` names the inputs apart when several
 * models share a graph (PPO's policy, reference and value model).
 */
export function paramInputs(config: GPTConfig, head: Head = 'lm', prefix = ''): Params {
  const shapes = gptParamShapes(config, { head });
  return Object.fromEntries([...shapes].map(([name, shape]) => [name, input(prefix + name, 'float32', shape)]));
}

/** GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer), LayerNorm 1/0. */
export function initParams(config: GPTConfig, rng: Rng, head: Head = 'lm'): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of gptParamShapes(config, { head })) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (/ln_\d|ln_f/.test(name) && name.endsWith('.weight')) data.fill(1);
    else if (name.endsWith('.weight')) {
      const std = name.endsWith('c_proj.weight') ? 0.02 / Math.sqrt(2 * config.nLayer) : 0.02;
      for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
    }
    out.set(name, data);
  }
  return out;
}

/** Causal self-attention; with `past`, the new keys/values are appended to the cached ones. */
function attention(x: Tensor, p: Params, h: string, cfg: GPTConfig, bias: Tensor, past?: KV): { y: Tensor; kv: KV } {
  const d = cfg.nEmbd, nh = cfg.nHead, hd = d / nh;
  const qkv = linear(x, p[`${h}.attn.c_attn.weight`], p[`${h}.attn.c_attn.bias`]); // [B, T, 3D]
  const heads = (t: Tensor) => transpose(t.reshape([x.shape[0], x.shape[1], nh, hd]), [0, 2, 1, 3]); // [B, H, T, hd]
  const q = heads(slice(qkv, 2, 0, d));
  let key = heads(slice(qkv, 2, d, 2 * d));
  let value = heads(slice(qkv, 2, 2 * d, 3 * d));
  if (past) {
    key = concat([past.key, key], 2);
    value = concat([past.value, value], 2);
  }
  const scores = matmul(q, transpose(key, [0, 1, 3, 2])).mul(1 / Math.sqrt(hd)).add(bias); // [B, H, T, S]
  const y = matmul(softmax(scores, -1), value); // [B, H, T, hd]
  const merged = transpose(y, [0, 2, 1, 3]).reshape([x.shape[0], x.shape[1], d]);
  return { y: linear(merged, p[`${h}.attn.c_proj.weight`], p[`${h}.attn.c_proj.bias`]), kv: { key, value } };
}

function mlp(x: Tensor, p: Params, h: string): Tensor {
  const hidden = gelu(linear(x, p[`${h}.mlp.c_fc.weight`], p[`${h}.mlp.c_fc.bias`]));
  return linear(hidden, p[`${h}.mlp.c_proj.weight`], p[`${h}.mlp.c_proj.bias`]);
}

/** Transformer block `i` (pre-LayerNorm): x + attention(ln_1(x)), then + mlp(ln_2(x)). */
export function block(x: Tensor, p: Params, i: number, cfg: GPTConfig, bias: Tensor, past?: KV): { x: Tensor; kv: KV } {
  const h = `h.${i}`, eps = cfg.layerNormEpsilon;
  const a = attention(layerNorm(x, p[`${h}.ln_1.weight`], p[`${h}.ln_1.bias`], eps), p, h, cfg, bias, past);
  x = x.add(a.y);
  x = x.add(mlp(layerNorm(x, p[`${h}.ln_2.weight`], p[`${h}.ln_2.bias`], eps), p, h));
  return { x, kv: a.kv };
}

/**
 * Final hidden states [B, T, D] for tokens [B, T] at positions [B, T] (int32), under the additive
 * attention bias [B, 1, T, S]; `present` holds every layer's keys and values for a KV cache.
 */
export function transformer(p: Params, cfg: GPTConfig, tokens: Tensor, positions: Tensor, bias: Tensor, past?: KV[]): { hidden: Tensor; present: KV[] } {
  let x = gather(p['wte.weight'], tokens).add(gather(p['wpe.weight'], positions));
  const present: KV[] = [];
  for (let i = 0; i < cfg.nLayer; i++) {
    const out = block(x, p, i, cfg, bias, past?.[i]);
    x = out.x;
    present.push(out.kv);
  }
  return { hidden: layerNorm(x, p['ln_f.weight'], p['ln_f.bias'], cfg.layerNormEpsilon), present };
}

/** Next-token logits [..., V] from hidden states [..., D]. */
export function lmHead(p: Params, hidden: Tensor): Tensor {
  const w = p['lm_head.weight'] ?? p['wte.weight']; // [V, D]
  return matmul(hidden, transpose(w, [1, 0]));
}

/**
 * lmHead for one position per sequence (generation): logits [B, V] from hidden [B, D], as (W hᵀ)ᵀ.
 * With so few rows, onnxruntime would spend most of h Wᵀ repacking W; W hᵀ reads W as it is.
 */
export function lastTokenLogits(p: Params, hidden: Tensor): Tensor {
  const w = p['lm_head.weight'] ?? p['wte.weight']; // [V, D]
  return transpose(matmul(w, transpose(hidden, [1, 0])), [1, 0]);
}

/** A scalar per position [..., D] → [...] from the score head (reward and value models). */
export function scoreHead(p: Params, hidden: Tensor): Tensor {
  const out = matmul(hidden, transpose(p['score.weight'], [1, 0])); // [..., 1]
  const scores = reshape(out, hidden.shape.slice(0, -1));
  return p['score.bias'] ? scores.add(reshape(p['score.bias'], [])) : scores;
}

/** The standard inputs of a forward pass over a [B, T] window that attends to S keys. */
export function sequenceInputs(keys: string = 'T') {
  return {
    tokens: input('tokens', 'int32', ['B', 'T']),
    positions: input('positions', 'int32', ['B', 'T']),
    attnBias: input('attn_bias', 'float32', ['B', 1, 'T', keys]),
  };
}

/**
 * Past keys/values inputs for decoding with a cache of P positions, [B, H, P, hd]; or, `byPosition`,
 * fed as [P, B, H, hd] (a host-side cache that grows by appending) and transposed for attention.
 */
export function pastInputs(cfg: GPTConfig, byPosition = false): KV[] {
  const hd = cfg.nEmbd / cfg.nHead;
  const past = (name: string) => byPosition
    ? transpose(input(name, 'float32', ['P', 'B', cfg.nHead, hd]), [1, 2, 0, 3])
    : input(name, 'float32', ['B', cfg.nHead, 'P', hd]);
  return Array.from({ length: cfg.nLayer }, (_, i) => ({ key: past(`past.${i}.key`), value: past(`past.${i}.value`) }));
}

/**
 * A decoder-only language model as trainers, generation and scoring use it, whatever its
 * architecture (./architecture.ts): parameters as graph inputs under their HF names, the forward
 * pass, the heads on top (LM head or scalar score), the inputs of a pass and of a KV cache, fresh
 * weights, and the tokenizer.
 *
 * Masking is one additive bias [B, 1, T, S] fed by the host (0 = may attend, -1e9 = may not),
 * which covers causality, left padding and a KV cache with the same graph code.
 */
import { LinearLogprobs, fusedLinearLogprobs } from '../engine/linear-logprobs';
import { dense, matmul, reshape, transpose } from '../engine/ops';
import { chunkCount } from '../engine/token-chunks';
import { Dim, Tensor, input } from '../engine/tensor';
import { Rng } from '../util/rng';
import { ForwardInputs, KV, KvShape, ParamSpec, Params, architectureOf } from './architecture';
import { INIT_STD } from './blocks';
import { Head, ModelConfig } from './config';
import { NamedTensor } from './safetensors';
import { Tokenizer } from './tokenizer';

export interface HeadOptions {
  head?: Head;
  /** The score head has a bias, score.bias [1] (some reward checkpoints do). */
  scoreBias?: boolean;
}

/** The head's parameters, under HF's names for every family: an untied LM head's, or the score head's. */
function headParams(cfg: ModelConfig, { head = 'lm', scoreBias = false }: HeadOptions): ParamSpec[] {
  const drawn = { normal: INIT_STD };
  if (head === 'lm')
    return cfg.tiedHead ? [] : [{ name: 'lm_head.weight', shape: [cfg.vocabSize, cfg.nEmbd], init: drawn }];
  const bias: ParamSpec[] = scoreBias ? [{ name: 'score.bias', shape: [1], init: 'zeros' }] : [];
  return [{ name: 'score.weight', shape: [1, cfg.nEmbd], init: drawn }, ...bias];
}

/** Every parameter with its head's, in checkpoint order. */
export function paramSpecs(cfg: ModelConfig, opts: HeadOptions = {}): ParamSpec[] {
  return [...architectureOf(cfg).params(cfg), ...headParams(cfg, opts)];
}

/** Every parameter's HF name and shape. */
export function paramShapes(cfg: ModelConfig, opts: HeadOptions = {}): Map<string, number[]> {
  return new Map(paramSpecs(cfg, opts).map((s) => [s.name, s.shape]));
}

/**
 * One graph input per parameter, keyed by HF name. `prefix` names the inputs apart when several
 * models share a graph (PPO's policy, reference and value model).
 */
export function paramInputs(cfg: ModelConfig, head: Head = 'lm', prefix = ''): Params {
  return Object.fromEntries(paramSpecs(cfg, { head }).map((s) => [s.name, input(prefix + s.name, 'float32', s.shape)]));
}

/** Fresh weights as the architecture declares them, drawn from `rng` in checkpoint order. */
export function initParams(cfg: ModelConfig, rng: Rng, head: Head = 'lm'): Map<string, NamedTensor> {
  return initTensors(paramSpecs(cfg, { head }), rng);
}

/** Tensors as `specs` declare them, drawn from `rng` in order. */
export function initTensors(specs: ParamSpec[], rng: Rng): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const { name, shape, init } of specs) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (init === 'ones') data.fill(1);
    else if (init === 'zeros') data.fill(0);
    else if ('normal' in init) for (let i = 0; i < data.length; i++) data[i] = rng.normal() * init.normal;
    else for (let i = 0; i < data.length; i++) data[i] = (2 * rng.next() - 1) * init.uniform;
    out.set(name, { dtype: 'float32', shape, data });
  }
  return out;
}

/**
 * A parameter's name in Hugging Face's files and module tree: the trunk's under the architecture's
 * prefix ("transformer.h.0.attn.c_attn.weight"), the heads' ("lm_head.", "score.") as they are.
 */
export function hfName(cfg: ModelConfig, name: string): string {
  const isHead = name.startsWith('lm_head.') || name.startsWith('score.');
  return isHead ? name : architectureOf(cfg).checkpoint.trunkPrefix + name;
}

/**
 * Final hidden states [B, T, D] for tokens at positions under the attention bias; with `past`,
 * attending to the cached keys and values too. `present` holds every layer's keys and values of
 * these T positions (what a cache adds).
 */
export function transformer(
  p: Params,
  cfg: ModelConfig,
  inputs: ForwardInputs,
  past?: KV[],
): { hidden: Tensor; present: KV[] } {
  return architectureOf(cfg).forward(p, cfg, inputs, past);
}

/** The LM head's weight [V, D]: its own, or the token embedding when tied. */
export function lmHeadWeight(p: Params, cfg: ModelConfig): Tensor {
  return p['lm_head.weight'] ?? p[architectureOf(cfg).embedding];
}

/** Next-token logits [..., V] from hidden states [..., D], the weight [V, D] read as it is stored. */
export function lmHead(p: Params, cfg: ModelConfig, hidden: Tensor): Tensor {
  return dense(hidden, lmHeadWeight(p, cfg), true);
}

/**
 * How many chunks of tokens the fused head functions (engine/linear-*.ts) take for batches of up to
 * `batchTokens` tokens: about 64 MB of logits each while the head is frozen (LoRA, a reference);
 * one when it trains, since onnxruntime's CPU Gemm does not add each chunk's share of W's gradient
 * into one buffer in place but makes a new [V, D] one (npm run bench:sft measured it slower and larger).
 */
export function headChunks(cfg: ModelConfig, batchTokens: number, headTrains: boolean): number {
  return headTrains ? 1 : chunkCount(batchTokens, cfg.vocabSize);
}

/** How lmHeadLogprobs reads the head. */
export interface HeadLogprobsOptions {
  /** The sampling temperature the logits are divided by. */
  temperature: number;
  /** The most tokens a batch of the graph holds: they set the number of chunks (headChunks). */
  batchTokens: number;
  /** The parameters that train; none: the log-probs send back no gradient (a frozen reference). */
  params?: Tensor[];
  /** Whether the per-position entropy is wanted too. */
  entropy?: boolean;
}

/**
 * The log-probs of `targets` [...] under the LM head at the sampling temperature, from hidden
 * states [..., D], with the mean logit and (when asked for) the entropy at each position: the
 * fused head (engine/linear-logprobs.ts), which never holds the logits of more than a chunk.
 */
export function lmHeadLogprobs(
  p: Params,
  cfg: ModelConfig,
  hidden: Tensor,
  targets: Tensor,
  o: HeadLogprobsOptions,
): LinearLogprobs {
  const head = lmHeadWeight(p, cfg);
  const headTrains = !!o.params?.includes(head);
  return fusedLinearLogprobs(hidden, head, targets, {
    temperature: o.temperature,
    chunks: headChunks(cfg, o.batchTokens, headTrains),
    gradients: !o.params ? 'none' : headTrains ? 'hidden and weight' : 'hidden',
    entropy: o.entropy,
  });
}

/**
 * lmHead for one position per sequence (generation): logits [B, V] from hidden [B, D], as (W hᵀ)ᵀ.
 * With so few rows, onnxruntime would spend most of h Wᵀ repacking W; W hᵀ reads W as it is.
 */
export function lastTokenLogits(p: Params, cfg: ModelConfig, hidden: Tensor): Tensor {
  return transpose(matmul(lmHeadWeight(p, cfg), transpose(hidden, [1, 0])), [1, 0]);
}

/** A scalar per position [..., D] → [...] from the score head (reward and value models). */
export function scoreHead(p: Params, hidden: Tensor): Tensor {
  const out = dense(hidden, p['score.weight'], true); // [..., 1]
  const scores = reshape(out, hidden.shape.slice(0, -1));
  return p['score.bias'] ? scores.add(reshape(p['score.bias'], [])) : scores;
}

/**
 * The standard inputs of a forward pass over a [B, T] window that attends to S keys; `rows` names
 * B, `queries` T (a number for a KV-cache decode run).
 */
export function sequenceInputs(keys: Dim = 'T', rows: string = 'B', queries: Dim = 'T'): ForwardInputs {
  return {
    tokens: input('tokens', 'int32', [rows, queries]),
    positions: input('positions', 'int32', [rows, queries]),
    attnBias: input('attn_bias', 'float32', [rows, 1, queries, keys]),
  };
}

/** Layers, KV heads and head width of the model's KV cache. */
export function kvShape(cfg: ModelConfig): KvShape {
  return architectureOf(cfg).kvShape(cfg);
}

/**
 * Past keys/values inputs for decoding with a cache of P positions, [B, nKvHead, P, headDim]; or,
 * `byPosition`, fed as [P, B, nKvHead, headDim] (a host-side cache that grows by appending) and
 * transposed for attention (onnxruntime folds the transposes into its MatMuls: nothing is copied).
 */
export function pastInputs(cfg: ModelConfig, byPosition = false): KV[] {
  const { layers, nKvHead, headDim } = kvShape(cfg);
  const past = (name: string) =>
    byPosition
      ? transpose(input(name, 'float32', ['P', 'B', nKvHead, headDim]), [1, 2, 0, 3])
      : input(name, 'float32', ['B', nKvHead, 'P', headDim]);
  return Array.from({ length: layers }, (_, i) => ({ key: past(`past.${i}.key`), value: past(`past.${i}.value`) }));
}

/** The tokenizer of the model's architecture. */
export function tokenizerFor(cfg: ModelConfig): Tokenizer {
  return architectureOf(cfg).tokenizer();
}

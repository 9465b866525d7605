/**
 * Sizes checked against the machine's memory before anything is allocated. A batch or model far
 * too large for the machine would otherwise end the process inside V8 or onnxruntime, with no word
 * about which setting to change. The estimates are lower bounds (what the step cannot do without),
 * so a size is refused only when it cannot fit.
 */
import * as os from 'os';
import { ModelConfig } from '../model/config';
import { paramShapes } from '../model/decoder';
import { numel } from '../model/safetensors';

const FLOAT_BYTES = 4;
/** Copies of each weight while training: the weight, its gradient and AdamW's two moments. */
const TRAINING_COPIES = 4;
/** Activations per token and layer kept for the backward pass, in n_embd units (q, k, v, MLP in and out...). */
const LAYER_ACTIVATIONS = 8;

/** Parameters of a model of this size (the layers counted once and multiplied, so a huge n_layer costs nothing). */
export function parameterCount(cfg: ModelConfig): number {
  const count = (nLayer: number) =>
    [...paramShapes({ ...cfg, nLayer }).values()].reduce((n, shape) => n + numel(shape), 0);
  const trunk = count(0);
  return trunk + cfg.nLayer * (count(1) - trunk);
}

/**
 * At least the bytes of a training step on `batch` sequences of `seqLen` tokens: every weight with
 * its gradient and moments (once, when the weights are frozen under LoRA adapters), each position's
 * logits over the vocabulary, and each layer's activations.
 */
export function trainingBytes(cfg: ModelConfig, batch: number, seqLen: number, frozen = false): number {
  const perToken = cfg.vocabSize + LAYER_ACTIVATIONS * cfg.nEmbd * cfg.nLayer;
  return FLOAT_BYTES * ((frozen ? 1 : TRAINING_COPIES) * parameterCount(cfg) + batch * seqLen * perToken);
}

/**
 * Refuses a training batch that cannot fit, naming the config `field` that sets its size; `frozen`:
 * the weights do not train (LoRA adapters do).
 */
export function checkBatchFits(
  field: string,
  cfg: ModelConfig,
  batch: number,
  seqLen: number,
  { memory = os.totalmem(), frozen = false }: { memory?: number; frozen?: boolean } = {},
): void {
  const sequences = `${batch} sequence${batch === 1 ? '' : 's'} of up to ${seqLen} tokens`;
  checkFits(
    field,
    `training on batches of ${sequences} (vocabulary ${cfg.vocabSize}, ` + `n_embd ${cfg.nEmbd}, ${layers(cfg)})`,
    trainingBytes(cfg, batch, seqLen, frozen),
    memory,
  );
}

/** Refuses a model whose weights alone cannot fit, naming the config `field` that sets its size. */
export function checkWeightsFit(field: string, cfg: ModelConfig): void {
  const params = parameterCount(cfg);
  checkFits(
    field,
    `a model of ${params.toExponential(2)} parameters (n_embd ${cfg.nEmbd}, ${layers(cfg)}, ` +
      `context ${cfg.nPositions})`,
    FLOAT_BYTES * params,
    os.totalmem(),
  );
}

/** The largest of `lengths` (0 for none); spreading a long list into Math.max would overflow the stack. */
export function longest(lengths: readonly number[]): number {
  return lengths.reduce((a, b) => Math.max(a, b), 0);
}

function checkFits(field: string, what: string, bytes: number, memory: number): void {
  if (bytes <= memory) return;
  throw new Error(
    `${field}: ${what} needs at least ${formatBytes(bytes)} of memory, ` +
      `more than this machine's ${formatBytes(memory)}; make it smaller`,
  );
}

function layers(cfg: ModelConfig): string {
  return `${cfg.nLayer} layer${cfg.nLayer === 1 ? '' : 's'}`;
}

function formatBytes(bytes: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let unit = 0;
  while (bytes >= 1000 && unit < units.length - 1) [bytes, unit] = [bytes / 1000, unit + 1];
  return `${bytes.toPrecision(3)} ${units[unit]}`;
}

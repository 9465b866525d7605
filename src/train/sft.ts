/**
 * Stage 1: supervised fine-tuning. Next-token cross-entropy on the completion (or assistant)
 * tokens, trained by the shared loop (./trainer.ts): AdamW with warmup + decay, gradient clipping,
 * periodic eval and checkpoints, and resume to the same loss curve as an uninterrupted run.
 */
import { fusedLinearCrossEntropy } from '../engine/linear-cross-entropy';
import { ChunkGradients } from '../engine/token-chunks';
import { hostTensor } from '../engine/runtime';
import { input } from '../engine/tensor';
import { ModelConfig } from '../model/config';
import { headChunks, lmHeadWeight, sequenceInputs, transformer } from '../model/decoder';
import { LoraAdapter, modelInputs, trainableInputs } from '../model/lora';
import { attentionBias } from '../model/masks';
import { TokenBatch, TokenExample, makeBatch } from '../data/batch';
import { loadSft, splitTrainEval } from '../data/sft';
import { EmitEvent } from '../protocol/runner';
import { Rng } from '../util/rng';
import { Experiment } from '../experiment/config';
import { checkBatchFits, longest } from './memory';
import { trainedModel } from './adapters';
import { loadModel } from './model-state';
import { sampleResponses } from './samples';
import { Generator } from './generate';
import { Trainer } from './trainer';
import { Batch, describeModel, sampledData, oneModel } from './stage';

/**
 * Mean next-token loss over masked positions, and how often the argmax prediction is right there;
 * with an adapter, only it trains. `gradientCheckpointing` recomputes each layer in the backward.
 * The LM head and its loss run over chunks of tokens (fusedLinearCrossEntropy), as many as keep
 * each chunk's logits near 64 MB for a batch of `batchTokens` tokens (one chunk when omitted) while
 * the head is frozen (LoRA). A trained head stays one chunk: each chunk would add its share of W's
 * gradient into a new [V, D] buffer (onnxruntime's CPU Gemm does not accumulate in place), which
 * made the step slower and its peak memory larger than the logits saved (npm run bench:sft).
 * `evaluation` is the same loss and accuracy without the gradients' work, for held-out batches.
 */
export function sftLossGraph(cfg: ModelConfig, adapter?: LoraAdapter, gradientCheckpointing = false, batchTokens = 0) {
  const p = modelInputs(cfg, 'lm', '', adapter && { adapter });
  const inputs = { ...sequenceInputs(), gradientCheckpointing };
  const targets = input('targets', 'int32', ['B', 'T']);
  const lossMask = input('loss_mask', 'float32', ['B', 'T']);
  const hidden = transformer(p, cfg, inputs).hidden; // [B, T, D]
  const params = trainableInputs(p, adapter);
  const head = lmHeadWeight(p, cfg);
  const headTrains = params.includes(head);
  const chunks = headChunks(cfg, batchTokens, headTrains);
  const loss = (gradients: ChunkGradients) =>
    fusedLinearCrossEntropy(hidden, head, targets, lossMask, chunks, gradients);
  const trained = loss(headTrains ? 'hidden and weight' : 'hidden');
  return { ...trained, params, evaluation: loss('none') };
}

/** The named inputs of the SFT graphs for one batch. */
export function batchFeeds(b: TokenBatch) {
  const dims = [b.batch, b.seqLen];
  return {
    tokens: hostTensor('int32', b.tokens, dims),
    positions: hostTensor('int32', b.positions, dims),
    attn_bias: hostTensor('float32', attentionBias(b.attentionMask, b.batch, b.seqLen, b.seqLen), [
      b.batch,
      1,
      b.seqLen,
      b.seqLen,
    ]),
    targets: hostTensor('int32', b.targets, dims),
    loss_mask: hostTensor('float32', b.lossMask, dims),
  };
}

export interface SftRun {
  experiment: Experiment;
  outputDir: string;
  /** A checkpoint directory of an earlier run of this experiment to continue from. */
  resumeFrom?: string;
  emit: EmitEvent;
  signal?: AbortSignal;
}

export async function runSft(run: SftRun): Promise<{ modelDir: string; stopped: boolean }> {
  const { experiment: exp, emit, outputDir } = run;
  const s = exp.sft;
  if (!s) throw new Error('the experiment config has no "sft" section');
  const loaded = loadModel(run.resumeFrom ?? exp.model, exp.seed, exp.model_size);
  const model = trainedModel(loaded, s.peft, { seed: exp.seed, outputDir, where: 'sft.peft' });
  const { config: cfg, tokenizer, adapter } = model;
  const maxLength = Math.min(s.max_length ?? cfg.nPositions, cfg.nPositions);

  const data = await loadSft(s.data, tokenizer, maxLength, tokenizer.chat(exp.chat_template_kwargs), s.columns);
  emit({ type: 'log', level: 'info', message: data.summary });
  warnOfCuts(data, maxLength, emit);
  const seqLen = longest(data.examples.map((e) => e.ids.length - 1));
  checkBatchFits('sft.per_device_train_batch_size', cfg, s.per_device_train_batch_size, seqLen, { frozen: !!adapter });
  const { trainSet: train, evalSet: evaluation } = splitTrainEval(data.examples, s.eval_fraction, new Rng(exp.seed));
  emit({
    type: 'log',
    level: 'info',
    message: `SFT on ${train.length} examples (${evaluation.length} held out), model ${describeModel(cfg)}`,
  });

  const graph = sftLossGraph(cfg, adapter, s.gradient_checkpointing, s.per_device_train_batch_size * seqLen);
  const trainer = await Trainer.create({
    stage: 'sft',
    title: 'SFT',
    experiment: exp,
    settings: s,
    totalSteps: s.max_steps,
    ...oneModel(model, run.resumeFrom),
    graph: {
      loss: graph.loss,
      params: graph.params,
      metrics: { mean_token_accuracy: graph.accuracy },
      evaluation: { loss: graph.evaluation.loss, metrics: { mean_token_accuracy: graph.evaluation.accuracy } },
    },
    outputDir,
    emit,
  });
  const showSamples = async (at: number) => {
    if (!s.sample_prompts.length) return;
    const generator = await Generator.create(
      trainer.runtime,
      cfg,
      trainer.state,
      tokenizer.padId,
      '',
      adapter && { adapter },
    );
    const rows = await sampleResponses(generator, tokenizer, s.sample_prompts, new Rng(exp.seed));
    await generator.release();
    trainer.samples(rows, at);
  };

  const toBatch = (examples: TokenExample[]) => sftBatch(examples, tokenizer.padId);
  const batches = sampledData(train, evaluation, s.per_device_train_batch_size, exp.seed, toBatch);
  return trainer.trainWithSamples(batches, showSamples, run.signal);
}

/** Says how many examples were truncated to `maxLength` tokens, and how many left nothing to train on. */
function warnOfCuts(data: { truncated: number; dropped: number }, maxLength: number, emit: EmitEvent): void {
  const warn = (message: string) => emit({ type: 'log', level: 'warn', message });
  if (data.truncated) warn(`${data.truncated} examples were longer than ${maxLength} tokens and were truncated`);
  if (data.dropped) warn(`${data.dropped} examples had nothing to train on after truncation and were left out`);
}

/** A batch padded only to its longest example (shorter batches run faster), weighted by its trained tokens. */
function sftBatch(examples: TokenExample[], padId: number): Batch {
  const b = makeBatch(examples, Math.max(...examples.map((e) => e.ids.length - 1)), padId);
  return { feeds: batchFeeds(b), weight: sumOf(b.lossMask), tokens: sumOf(b.attentionMask) };
}

const sumOf = (xs: Float32Array) => xs.reduce((a, b) => a + b, 0);

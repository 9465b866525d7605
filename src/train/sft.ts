/**
 * Stage 1: supervised fine-tuning. Next-token cross-entropy on the completion (or assistant)
 * tokens, AdamW with warmup + decay, gradient clipping, periodic eval and checkpoints, and resume
 * to the same loss curve as an uninterrupted run (batches are a function of seed and step).
 */
import * as fs from 'fs';
import * as path from 'path';
import { crossEntropy, maskedMean } from '../engine/nn';
import { cast, gatherElements, greaterOrEqual, max, reshape, unsqueeze } from '../engine/ops';
import { toOnnx } from '../engine/onnx';
import { Program, Runtime, hostTensor } from '../engine/runtime';
import { State, TrainStep, buildTrainGraph } from '../engine/step';
import { adamw } from '../engine/optim';
import { input } from '../engine/tensor';
import { GPTConfig } from '../model/config';
import { lmHead, paramInputs, sequenceInputs, transformer } from '../model/gpt2';
import { attentionBias } from '../model/masks';
import { gpt2Tokenizer } from '../model/tokenizer';
import { BatchSampler, TokenBatch, TokenExample, makeBatch } from '../data/batch';
import { loadSft, splitTrainEval } from '../data/sft';
import { EmitEvent } from '../protocol/runner';
import { Rng } from '../util/rng';
import { Experiment } from './config';
import { MetricsLog } from './metrics-log';
import { loadModel, putOptimizerState, putTensors, saveModel } from './model-state';
import { learningRate } from './schedule';
import { sampleResponses } from './samples';
import { Generator } from './generate';

/** Mean next-token loss over masked positions, and how often the argmax prediction is right there. */
export function sftLossGraph(cfg: GPTConfig) {
  const p = paramInputs(cfg);
  const { tokens, positions, attnBias } = sequenceInputs();
  const targets = input('targets', 'int32', ['B', 'T']);
  const lossMask = input('loss_mask', 'float32', ['B', 'T']);
  const logits = lmHead(p, transformer(p, cfg, tokens, positions, attnBias).hidden); // [B, T, V]
  // Right when the target's logit is the largest (ArgMax would give int64, which not every provider casts).
  const targetLogit = reshape(gatherElements(logits, unsqueeze(targets, -1), -1), targets.shape);
  const correct = cast(greaterOrEqual(targetLogit, max(logits, -1)), 'float32');
  return { loss: crossEntropy(logits, targets, lossMask), accuracy: maskedMean(correct, lossMask), params: Object.values(p) };
}

/** The named inputs of the SFT graphs for one batch. */
export function batchFeeds(b: TokenBatch) {
  const dims = [b.batch, b.seqLen];
  return {
    tokens: hostTensor('int32', b.tokens, dims),
    positions: hostTensor('int32', b.positions, dims),
    attn_bias: hostTensor('float32', attentionBias(b.attentionMask, b.batch, b.seqLen, b.seqLen), [b.batch, 1, b.seqLen, b.seqLen]),
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
  const tokenizer = gpt2Tokenizer();
  const model = loadModel(run.resumeFrom ?? exp.model, exp.seed, exp.model_size);
  const cfg = model.config;
  const maxLength = Math.min(s.max_length ?? cfg.nPositions, cfg.nPositions);

  const data = loadSft(s.data, tokenizer, maxLength);
  if (data.truncated) emit({ type: 'log', level: 'warn', message: `${data.truncated} examples were longer than ${maxLength} tokens and were truncated` });
  if (data.dropped) emit({ type: 'log', level: 'warn', message: `${data.dropped} examples had nothing to train on after truncation and were left out` });
  const { trainSet: train, evalSet: evaluation } = splitTrainEval(data.examples, s.eval_fraction, new Rng(exp.seed));
  const sampler = new BatchSampler(train, s.per_device_train_batch_size, exp.seed);
  emit({ type: 'log', level: 'info', message: `SFT on ${train.length} examples (${evaluation.length} held out), model ${describe(cfg)}` });

  const runtime = await Runtime.create({ provider: exp.runtime.provider as never, threads: exp.runtime.threads, log: (m) => emit({ type: 'log', level: 'info', message: m }) });
  const state = new State(runtime);
  putTensors(state, model.params);
  const resumed = run.resumeFrom ? model.checkpoint : undefined;
  if (resumed?.optimizerState) putOptimizerState(state, resumed.optimizerState);
  const startStep = resumed ? Number(resumed.trainerState?.step ?? 0) : 0;

  const graph = sftLossGraph(cfg);
  const step = await TrainStep.create(
    buildTrainGraph({ loss: graph.loss, params: graph.params, optimizer: adamw({ weightDecay: s.weight_decay }), maxGradNorm: s.max_grad_norm, metrics: { mean_token_accuracy: graph.accuracy } }),
    state,
  );
  const evaluator = await runtime.load(toOnnx({ loss: graph.loss, mean_token_accuracy: graph.accuracy }, 'sft_eval'));
  const schedule = { type: s.lr_scheduler_type, peak: s.learning_rate, warmupSteps: s.warmup_steps, totalSteps: s.max_steps, minRatio: s.min_lr_ratio };
  fs.mkdirSync(outputDir, { recursive: true });
  const log = new MetricsLog(path.join(outputDir, 'metrics.jsonl'), startStep);

  const showSamples = async (at: number) => {
    if (!s.sample_prompts.length) return;
    const generator = await Generator.create(runtime, cfg, state, tokenizer.padId);
    const rows = await sampleResponses(generator, tokenizer, s.sample_prompts, new Rng(exp.seed));
    await generator.release();
    emit({ type: 'samples', stage: 'sft', step: at, rows });
  };
  const save = async (dir: string, at: number) => {
    await saveModel(dir, state, cfg, 'lm', { stage: 'sft', step: at, seed: exp.seed }, at);
    emit({ type: 'checkpoint', stage: 'sft', step: at, path: dir });
  };

  if (startStep === 0) await showSamples(0);
  let window = { loss: 0, accuracy: 0, gradNorm: 0, tokens: 0, steps: 0, start: Date.now() };
  let at = startStep;
  while (at < s.max_steps && !run.signal?.aborted) {
    at++;
    const batch = packBatch(sampler.batch(at - 1), tokenizer.padId);
    const lr = learningRate(schedule, at);
    const m = await step.run(batchFeeds(batch), lr, at);
    if (!Number.isFinite(m.loss) || !Number.isFinite(m.grad_norm)) {
      throw new Error(`SFT diverged at step ${at} (loss ${m.loss}, grad_norm ${m.grad_norm}); the last checkpoint in ${outputDir} is intact — lower learning_rate and resume from it`);
    }
    window.loss += m.loss;
    window.accuracy += m.mean_token_accuracy;
    window.gradNorm += m.grad_norm;
    window.tokens += batch.attentionMask.reduce((a, b) => a + b, 0);
    window.steps++;
    emit({ type: 'progress', stage: 'sft', step: at, total: s.max_steps });

    if (at % s.logging_steps === 0 || at === s.max_steps) {
      const seconds = (Date.now() - window.start) / 1000;
      const values = {
        loss: window.loss / window.steps,
        mean_token_accuracy: window.accuracy / window.steps,
        grad_norm: window.gradNorm / window.steps,
        learning_rate: lr,
        tokens_per_second: window.tokens / seconds,
        epoch: (at * s.per_device_train_batch_size) / train.length,
      };
      log.append('sft', at, values);
      emit({ type: 'metrics', stage: 'sft', step: at, values });
      window = { loss: 0, accuracy: 0, gradNorm: 0, tokens: 0, steps: 0, start: Date.now() };
    }
    if (evaluation.length && (at % s.eval_steps === 0 || at === s.max_steps)) {
      const values = await evaluate(evaluator, state, evaluation, s.per_device_train_batch_size, tokenizer.padId);
      log.append('sft', at, values);
      emit({ type: 'metrics', stage: 'sft', step: at, values });
    }
    if (at % s.save_steps === 0 && at < s.max_steps) await save(path.join(outputDir, `checkpoint-${at}`), at);
  }
  const stopped = at < s.max_steps;
  const modelDir = path.join(outputDir, stopped ? `checkpoint-${at}` : 'model');
  await save(modelDir, at);
  if (!stopped) await showSamples(at);
  emit({ type: 'done', stage: 'sft', step: at, outputDir, stopped });
  await step.release();
  await evaluator.release();
  await state.release();
  return { modelDir, stopped };
}

/** Token-weighted loss and accuracy over the held-out examples. */
async function evaluate(program: Program, state: State, examples: TokenExample[], batchSize: number, padId: number) {
  let loss = 0, accuracy = 0, tokens = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const batch = packBatch(examples.slice(i, i + batchSize), padId);
    const feeds: Record<string, ReturnType<typeof hostTensor>> = batchFeeds(batch);
    for (const inp of program.model.inputs) if (state.has(inp.name)) feeds[inp.name] = state.get(inp.name);
    const out = await program.run(feeds);
    const n = batch.lossMask.reduce((a, b) => a + b, 0);
    loss += (out.loss.data as Float32Array)[0] * n;
    accuracy += (out.mean_token_accuracy.data as Float32Array)[0] * n;
    tokens += n;
  }
  return { eval_loss: loss / tokens, eval_mean_token_accuracy: accuracy / tokens };
}

/** A batch padded only to its longest example (shorter batches run faster). */
function packBatch(examples: TokenExample[], padId: number): TokenBatch {
  return makeBatch(examples, Math.max(...examples.map((e) => e.ids.length - 1)), padId);
}

function describe(cfg: GPTConfig): string {
  return `${cfg.nLayer} layers, d=${cfg.nEmbd}, ${cfg.nHead} heads, context ${cfg.nPositions}`;
}

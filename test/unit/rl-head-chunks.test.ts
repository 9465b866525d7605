/**
 * The RL stages' graphs with a frozen head (LoRA) give the same log-probs, losses, statistics and
 * gradients whether the head runs over the whole batch or in chunks of tokens (the fused head
 * log-probs, model/decoder.ts's lmHeadLogprobs), for GRPO/RLOO, PPO and DPO, policy and reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grad } from '../../src/engine/autodiff';
import { OnnxModel, toOnnx } from '../../src/engine/onnx';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { Dim } from '../../src/engine/tensor';
import { CHUNK_LOGITS_BYTES } from '../../src/engine/token-chunks';
import { parseExperiment } from '../../src/experiment/config';
import { presetConfig, resizeConfig } from '../../src/model/config';
import { newAdapter } from '../../src/model/lora';
import { dpoLossGraph, referenceLogpsGraph } from '../../src/train/dpo-loss';
import * as group from '../../src/train/group-graphs';
import * as ppo from '../../src/train/ppo-graphs';
import { StageGraph } from '../../src/train/stage';
import { Rng } from '../../src/util/rng';
import { LORA } from '../helpers/lora-config';

const cfg = resizeConfig(presetConfig('tiny-llama'), { nLayer: 1, nEmbd: 32, nHead: 2, nPositions: 16 });
const lora = { adapter: newAdapter(LORA, cfg, 'lm', 'test', new Rng(2), 'test') };
/** Tokens of a batch that make three chunks of the head; the batches below hold fewer, so chunks differ in rows. */
const THREE_CHUNKS = 3 * Math.floor(CHUNK_LOGITS_BYTES / (4 * cfg.vocabSize));
/** Batch sizes: B rows of T positions; DPO's P pairs, N scored positions. */
const DIMS: Record<string, number> = { B: 2, T: 5, P: 1, '2*P': 2, N: 7 };

/** Values for every input of a model: the weights random, the batch a valid one. */
function feedsOf(model: OnnxModel) {
  const rng = new Rng(7);
  const T = DIMS.T;
  const feeds: Record<string, ReturnType<typeof hostTensor>> = {};
  for (const { name, dtype, shape } of model.inputs) {
    const dims = shape.map((d: Dim) => (typeof d === 'number' ? d : DIMS[d]));
    const size = dims.reduce((a, b) => a * b, 1);
    const of = (f: (i: number) => number) =>
      dtype === 'int32'
        ? hostTensor(
            'int32',
            Int32Array.from({ length: size }, (_, i) => f(i)),
            dims,
          )
        : hostTensor(
            'float32',
            Float32Array.from({ length: size }, (_, i) => f(i)),
            dims,
          );
    const rowOf = (n: number) => (n < 3 ? 0 : 1); // DPO: the first 3 scored positions are the chosen row's
    const values: Record<string, (i: number) => number> = {
      positions: (i) => i % T,
      scored_positions: (i) => [1, 2, 4, 6, 7, 8, 9][i],
      attn_bias: (i) => (i % T > Math.floor(i / T) % T ? -1e9 : 0),
      response_mask: (i) => (i % T >= 2 ? 1 : 0),
      scored_rows: (i) => (Math.floor(i / DIMS.N) === rowOf(i % DIMS.N) ? 1 : 0),
      loss_normalizer: () => 6,
    };
    const random =
      dtype === 'int32'
        ? () => rng.int(cfg.vocabSize)
        : /logp/.test(name)
          ? () => -3 + rng.normal()
          : () => 0.3 * rng.normal();
    feeds[name] = of(values[name] ?? random);
  }
  return feeds;
}

/** A model's outputs on one batch. */
async function run(model: OnnxModel) {
  const program = await (await Runtime.create({ provider: 'cpu', threads: 1 })).load(model);
  const result = await program.run(feedsOf(model));
  await program.release();
  return Object.fromEntries(Object.entries(result).map(([k, v]) => [k, Array.from(v.data as Float32Array)]));
}

/** An update's loss, statistics and the gradients of its parameters. */
function updateModel(g: StageGraph): OnnxModel {
  const grads = grad(g.loss, g.params).map((d, i) => [`d:${g.params[i].name}`, d]);
  return toOnnx({ loss: g.loss, ...g.metrics, ...Object.fromEntries(grads) }, 'update');
}

/** The same results from `build` with the head whole and in three chunks (of 10 tokens, or DPO's 7). */
async function assertSameInChunks(build: (batchTokens: number) => OnnxModel) {
  const whole = await run(build(0));
  assertClose(await run(build(THREE_CHUNKS)), whole);
  return whole;
}

function assertClose(got: Record<string, number[]>, want: Record<string, number[]>) {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const [name, values] of Object.entries(want)) {
    const scale = Math.max(1e-3, ...values.map(Math.abs));
    values.forEach((w, i) =>
      assert.ok(Math.abs(got[name][i] - w) <= 1e-5 * scale, `${name}[${i}] is ${got[name][i]}, want ${w}`),
    );
  }
}

const experiment = parseExperiment(
  {
    model: 'tiny-llama',
    grpo: { prompts: 'p.jsonl', reward_funcs: ['r.ts'], beta: 0.04, num_iterations: 2, temperature: 0.7 },
    ppo: { prompts: 'p.jsonl', reward_model: 'rm', temperature: 0.7 },
  },
  'test',
);
const grpo = experiment.grpo!;
const ppoSettings = experiment.ppo!;

test('GRPO with a frozen head: the update and the reference log-probs in chunks equal the whole head', async () => {
  const needs = group.groupInputs('grpo', grpo);
  const whole = await assertSameInChunks((tokens) =>
    updateModel(group.updateGraph(cfg, 'grpo', grpo, needs, lora, tokens)),
  );
  assert.ok(Object.keys(whole).filter((k) => k.startsWith('d:')).length > 0 && 'entropy' in whole);
  const places = { policy: lora, ref: { adapter: lora.adapter } };
  await assertSameInChunks((tokens) => group.rolloutGraph(cfg, 0.7, needs, places, tokens)!);
});

test('PPO with a frozen head: the update and the reference log-probs in chunks equal the whole head', async () => {
  const s = ppoSettings;
  const places = { policy: lora, value: { adapter: newAdapter(LORA, cfg, 'score', 'test', new Rng(3), 'test') } };
  await assertSameInChunks((tokens) => updateModel(ppo.updateGraph(cfg, s, places, tokens)));
  await assertSameInChunks((tokens) => ppo.rolloutGraph(cfg, s.temperature, places, tokens));
});

test('DPO with a frozen head: the loss, metrics and reference log-probs in chunks equal the whole head', async () => {
  const s = { beta: 0.1, loss_type: 'sigmoid' as const, label_smoothing: 0 };
  const whole = await assertSameInChunks((tokens) => updateModel(dpoLossGraph(cfg, s, lora, tokens)));
  assert.ok('logits/chosen' in whole);
  await assertSameInChunks((tokens) => toOnnx(referenceLogpsGraph(cfg, false, 'ref.', undefined, tokens)));
});

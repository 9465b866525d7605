import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grad } from '../../src/engine/autodiff';
import { toOnnx } from '../../src/engine/onnx';
import { adamw } from '../../src/engine/optim';
import { Runtime } from '../../src/engine/runtime';
import { buildTrainGraph } from '../../src/engine/train-graph';
import { Tensor, topoSort } from '../../src/engine/tensor';
import { makeBatch } from '../../src/data/batch';
import { ModelConfig, PRESETS, resizeConfig } from '../../src/model/config';
import { initParams } from '../../src/model/decoder';
import { newAdapter } from '../../src/model/lora';
import { rewardLossGraph } from '../../src/train/reward';
import { batchFeeds, sftLossGraph } from '../../src/train/sft';
import { CHUNK_LOGITS_BYTES } from '../../src/engine/token-chunks';
import { hostTensor } from '../../src/engine/runtime';
import { Rng } from '../../src/util/rng';
import { LORA } from '../helpers/lora-config';

const MODELS: [string, ModelConfig][] = [
  ['GPT-2', resizeConfig(PRESETS.tiny, { nLayer: 2, vocabSize: 61, nPositions: 16 })],
  ['Llama', resizeConfig(PRESETS['tiny-llama'], { nLayer: 2, vocabSize: 61, nPositions: 16 })],
];

function feedsFor(cfg: ModelConfig) {
  const rng = new Rng(5);
  // Rows of different lengths, so padding and the loss mask take part.
  const examples = [11, 8, 6].map((n) => ({
    ids: Array.from({ length: n }, () => rng.int(cfg.vocabSize)),
    lossMask: Array.from({ length: n }, (_, i) => (i < 3 ? 0 : 1)),
  }));
  return batchFeeds(makeBatch(examples, 10, 0));
}

/** The loss and the gradient of every trained tensor, run on one batch. */
async function lossAndGrads(cfg: ModelConfig, checkpointed: boolean, lora: boolean, batchTokens = 0) {
  const adapter = lora ? newAdapter(LORA, cfg, 'lm', 'test', new Rng(2), 'test') : undefined;
  const g = sftLossGraph(cfg, adapter, checkpointed, batchTokens);
  const grads = grad(g.loss, g.params);
  const model = toOnnx({ loss: g.loss, ...Object.fromEntries(g.params.map((p, i) => [`grad:${p.name}`, grads[i]])) });
  const program = await (await Runtime.create({ provider: 'cpu', threads: 1 })).load(model);
  const weights = { ...Object.fromEntries(initParams(cfg, new Rng(1))), ...Object.fromEntries(adapter?.weights ?? []) };
  // lora_B starts at zero; give it values so the adapter's gradients are not trivially related.
  const rng = new Rng(9);
  const feeds = Object.fromEntries(
    Object.entries(weights).map(([name, t]) => {
      const data = /lora_B/.test(name) ? (t.data as Float32Array).map(() => 0.02 * rng.normal()) : t.data;
      return [name, hostTensor('float32', data as Float32Array, t.shape)];
    }),
  );
  const out = await program.run({ ...feeds, ...feedsFor(cfg) });
  await program.release();
  return { out, nodes: topoSort([g.loss, ...grads]).length };
}

for (const [family, cfg] of MODELS)
  for (const lora of [false, true])
    test(`${family}${lora ? ' with LoRA' : ''}: gradient checkpointing gives the same loss and gradients`, async () => {
      const plain = await lossAndGrads(cfg, false, lora),
        again = await lossAndGrads(cfg, true, lora);
      assert.ok(
        again.nodes > plain.nodes,
        `the backward recomputes the layers: ${again.nodes} vs ${plain.nodes} nodes`,
      );
      const names = Object.keys(plain.out);
      assert.ok(names.length > 3);
      assert.deepEqual(Object.keys(again.out).sort(), names.sort());
      for (const name of names) {
        const want = plain.out[name].data as Float32Array,
          got = again.out[name].data as Float32Array;
        const scale = Math.max(1e-3, ...Array.from(want, Math.abs));
        want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) <= 1e-5 * scale, `${name}[${i}]: ${got[i]} vs ${w}`));
      }
    });

/** Enough tokens for the LM head's loss to run in `chunks` chunks over `cfg`'s vocabulary. */
const tokensFor = (cfg: ModelConfig, chunks: number) => chunks * Math.floor(CHUNK_LOGITS_BYTES / (4 * cfg.vocabSize));

/** Softmax nodes of the SFT loss: one per layer's attention, and one per chunk of the LM head's loss. */
function softmaxes(cfg: ModelConfig, lora: boolean, batchTokens: number): number {
  const adapter = lora ? newAdapter(LORA, cfg, 'lm', 'test', new Rng(2), 'test') : undefined;
  return topoSort([sftLossGraph(cfg, adapter, false, batchTokens).loss]).filter((t) => t.op === 'Softmax').length;
}

for (const [family, cfg] of MODELS)
  test(`${family} with LoRA: the loss in chunks of tokens gives the loss and gradients of one chunk`, async () => {
    assert.equal(softmaxes(cfg, true, tokensFor(cfg, 4)), softmaxes(cfg, true, 0) + 3);
    const whole = await lossAndGrads(cfg, false, true),
      chunked = await lossAndGrads(cfg, false, true, tokensFor(cfg, 4));
    assert.ok(Object.keys(whole.out).length > 3);
    for (const name of Object.keys(whole.out)) {
      const want = whole.out[name].data as Float32Array,
        got = chunked.out[name].data as Float32Array;
      const scale = Math.max(1e-3, ...Array.from(want, Math.abs));
      want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) <= 1e-5 * scale, `${name}[${i}]: ${got[i]} vs ${w}`));
    }
  });

for (const [family, cfg] of MODELS)
  test(`${family}: a trained LM head keeps the loss in one chunk`, () => {
    assert.equal(softmaxes(cfg, false, tokensFor(cfg, 4)), softmaxes(cfg, false, 0));
  });

/** Transpose nodes that read a graph input (a weight, when the inputs are the model's parameters). */
const transposedInputs = (outputs: Tensor[]) =>
  topoSort(outputs).filter((t) => t.op === 'Transpose' && t.inputs[0].op === 'Input');

for (const [family, cfg] of MODELS)
  test(`${family}: the SFT training step reads every weight as it is stored (no Transpose of a parameter)`, () => {
    for (const [lora, checkpointed] of [
      [false, false],
      [true, false],
      [false, true],
    ]) {
      const adapter = lora ? newAdapter(LORA, cfg, 'lm', 'test', new Rng(2), 'test') : undefined;
      const g = sftLossGraph(cfg, adapter, checkpointed);
      const step = buildTrainGraph({ loss: g.loss, params: g.params, optimizer: adamw(), maxGradNorm: 1 });
      // Forward, backward and update: the whole step as it is emitted.
      const emitted = step.gradients.outputs.map((o) => o.name);
      assert.ok(emitted.includes(`new:${g.params[0].name}`));
      const grads = grad(g.loss, g.params);
      const found = transposedInputs([g.loss, g.accuracy, ...grads]).map(String);
      assert.deepEqual(found, [], `LoRA ${lora}, checkpointing ${checkpointed}`);
    }
  });

for (const [family, cfg] of MODELS)
  test(`${family}: the reward-model step reads every weight as it is stored (no Transpose of a parameter)`, () => {
    const g = rewardLossGraph(cfg, 0.01);
    const found = transposedInputs([g.loss, ...grad(g.loss, g.params)]).map(String);
    assert.deepEqual(found, []);
  });

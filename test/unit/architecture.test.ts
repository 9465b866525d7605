import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { adamw } from '../../src/engine/optim';
import { toOnnx } from '../../src/engine/onnx';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { State } from '../../src/engine/state';
import { TrainStep } from '../../src/engine/step';
import { buildTrainGraph } from '../../src/engine/train-graph';
import { numel } from '../../src/engine/tensor';
import { makeBatch } from '../../src/data/batch';
import { Architecture, registerArchitecture } from '../../src/model/architecture';
import {
  causalAttention,
  conv1d,
  conv1dParams,
  embedding,
  embeddingParams,
  layerNorm,
  layerNormParams,
  splitHeads,
} from '../../src/model/blocks';
import { loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint';
import { configFromHF, ModelConfig, validateConfig } from '../../src/model/config';
import { lmHead, paramInputs, paramSpecs, sequenceInputs, transformer } from '../../src/model/decoder';
import { gpt2 } from '../../src/model/gpt2';
import { attentionBias, positionIds } from '../../src/model/masks';
import { NamedTensor, readSafetensors } from '../../src/model/safetensors';
import { gpt2Tokenizer } from '../../src/model/tokenizer';
import { GREEDY, Generator } from '../../src/train/generate';
import { putTensors } from '../../src/train/model-state';
import { batchFeeds, sftLossGraph } from '../../src/train/sft';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../helpers/temp';

const scratch = tempDir('architecture-test');

/**
 * A test-only family, registered here and nowhere else: one pre-LayerNorm attention layer with
 * separate q/k/v projections, fewer KV heads than query heads, and a head width of its own.
 * Nothing outside this file knows it exists.
 */
const toy: Architecture = {
  modelType: 'toy-gqa',
  params: (cfg) => [
    ...embeddingParams('embed', cfg.vocabSize, cfg.nEmbd),
    ...embeddingParams('pos', cfg.nPositions, cfg.nEmbd),
    ...layerNormParams('attn_norm', cfg.nEmbd),
    ...conv1dParams('q', cfg.nEmbd, cfg.nHead * cfg.headDim),
    ...conv1dParams('k', cfg.nEmbd, cfg.nKvHead * cfg.headDim),
    ...conv1dParams('v', cfg.nEmbd, cfg.nKvHead * cfg.headDim),
    ...conv1dParams('o', cfg.nHead * cfg.headDim, cfg.nEmbd),
    ...layerNormParams('norm', cfg.nEmbd),
  ],
  embedding: 'embed.weight',
  forward(p, cfg, inputs, past) {
    const x = embedding(p, 'embed', inputs.tokens).add(embedding(p, 'pos', inputs.positions));
    const h = layerNorm(x, p, 'attn_norm', cfg.layerNormEpsilon);
    const heads = (name: string, n: number) => splitHeads(conv1d(h, p, name), n, cfg.headDim);
    const [q, k, v] = [heads('q', cfg.nHead), heads('k', cfg.nKvHead), heads('v', cfg.nKvHead)];
    const a = causalAttention(q, k, v, cfg, inputs.attnBias, past?.[0]);
    return { hidden: layerNorm(x.add(conv1d(a.y, p, 'o')), p, 'norm', cfg.layerNormEpsilon), present: [a.kv] };
  },
  kvShape: (cfg) => ({ layers: 1, nKvHead: cfg.nKvHead, headDim: cfg.headDim }),
  validate: () => {},
  hf: {
    architectures: { lm: 'ToyForCausalLM', score: 'ToyForSequenceClassification' },
    lmAliases: [],
    defaults: {},
    unsupported: {},
    ownKeys: [
      'vocab_size',
      'max_position_embeddings',
      'hidden_size',
      'num_attention_heads',
      'num_key_value_heads',
      'head_dim',
    ],
    read: (hf) => ({
      vocabSize: hf.vocab_size as number,
      nPositions: hf.max_position_embeddings as number,
      nEmbd: hf.hidden_size as number,
      nLayer: 1,
      nHead: hf.num_attention_heads as number,
      nKvHead: hf.num_key_value_heads as number,
      headDim: hf.head_dim as number,
      layerNormEpsilon: 1e-5,
      tiedHead: true,
    }),
    write: (cfg) => ({
      vocab_size: cfg.vocabSize,
      max_position_embeddings: cfg.nPositions,
      hidden_size: cfg.nEmbd,
      num_attention_heads: cfg.nHead,
      num_key_value_heads: cfg.nKvHead,
      head_dim: cfg.headDim,
    }),
  },
  checkpoint: { trunkPrefix: 'model.', buffers: /^$/ },
  tokenizer: gpt2Tokenizer,
};
registerArchitecture(toy);

/** 4 query heads of width 5 (not nEmbd / nHead) over `nKvHead` KV heads. */
const toyConfig = (nKvHead: number): ModelConfig => ({
  modelType: 'toy-gqa',
  vocabSize: 11,
  nPositions: 16,
  nEmbd: 12,
  nLayer: 1,
  nHead: 4,
  nKvHead,
  headDim: 5,
  layerNormEpsilon: 1e-5,
  tiedHead: true,
});

/** Weights large enough that logits differ clearly between tokens. */
function randomParams(cfg: ModelConfig, seed: number): Map<string, NamedTensor> {
  const rng = new Rng(seed);
  return new Map(
    paramSpecs(cfg).map(({ name, shape, init }) => {
      const data = Float32Array.from({ length: numel(shape) }, () => (init === 'ones' ? 1 : 0) + rng.normal() * 0.3);
      return [name, { dtype: 'float32', shape, data }];
    }),
  );
}

/**
 * The same model with nKvHead = nHead: query head j gets a copy of KV head kvHeadOf(j). HF's
 * repeat_kv gives each KV head a run of consecutive query heads.
 */
function copyKvHeads(params: Map<string, NamedTensor>, cfg: ModelConfig, kvHeadOf: (j: number) => number) {
  const hd = cfg.headDim,
    width = cfg.nKvHead * hd;
  const widen = (t: NamedTensor): NamedTensor => {
    const inputs = t.data.length / width;
    const data = new Float32Array(inputs * cfg.nHead * hd);
    for (let r = 0; r < inputs; r++) {
      for (let j = 0; j < cfg.nHead; j++) {
        const from = r * width + kvHeadOf(j) * hd;
        data.set(t.data.subarray(from, from + hd) as Float32Array, (r * cfg.nHead + j) * hd);
      }
    }
    return { dtype: 'float32', shape: [...t.shape.slice(0, -1), cfg.nHead * hd], data };
  };
  return new Map([...params].map(([name, t]) => [name, /^[kv]\./.test(name) ? widen(t) : t]));
}

/** Logits [B, T, V] of rows of token ids (all of one length), through paramInputs, transformer and lmHead. */
async function logits(runtime: Runtime, cfg: ModelConfig, params: Map<string, NamedTensor>, rows: number[][]) {
  const p = paramInputs(cfg);
  const program = await runtime.load(toOnnx({ logits: lmHead(p, cfg, transformer(p, cfg, sequenceInputs()).hidden) }));
  const b = rows.length,
    t = rows[0].length,
    mask = new Float32Array(b * t).fill(1);
  const weights = [...params].map(([n, x]) => [n, hostTensor('float32', x.data as Float32Array, x.shape)]);
  const out = await program.run({
    ...Object.fromEntries(weights),
    tokens: hostTensor('int32', Int32Array.from(rows.flat()), [b, t]),
    positions: hostTensor('int32', positionIds(mask, b, t, t), [b, t]),
    attn_bias: hostTensor('float32', attentionBias(mask, b, t, t), [b, 1, t, t]),
  });
  await program.release();
  return out.logits.data as Float32Array;
}

/** Prompts of different lengths (left-padded when batched). */
const rows = [
  [5, 7, 3, 8, 4, 9],
  [6, 2],
  [3, 1, 3, 2],
];

test('an unknown model_type names the file and lists the registered types', () => {
  const file = path.join(scratch, 'mistral', 'config.json');
  fs.mkdirSync(path.dirname(file));
  fs.writeFileSync(file, JSON.stringify({ model_type: 'mistral', hidden_size: 8 }));
  const expected = /model_type "mistral" is not supported \(supported: "gpt2", "llama", "qwen2", "qwen3", "toy-gqa"\)/;
  assert.throws(
    () => loadCheckpoint(path.dirname(file)),
    (err: Error) => {
      assert.ok(err.message.startsWith(`${file}: `), err.message);
      assert.match(err.message, expected);
      return true;
    },
  );
  assert.throws(() => configFromHF({ model_type: 7 }, 'c.json'), /^Error: c\.json: model_type 7 is not supported/);
  const gemma = { ...toyConfig(2), modelType: 'gemma' };
  assert.throws(() => validateConfig(gemma, 'model "x"'), /^Error: model "x": model_type "gemma" is not supported/);
  assert.throws(() => registerArchitecture(gpt2), /model_type "gpt2" is already registered/);
});

test("GPT-2's inventory: HF's names and shapes in checkpoint order, each with its initialisation", () => {
  const cfg: ModelConfig = {
    modelType: 'gpt2',
    vocabSize: 10,
    nPositions: 6,
    nEmbd: 4,
    nLayer: 1,
    nHead: 2,
    nKvHead: 2,
    headDim: 2,
    layerNormEpsilon: 1e-5,
    tiedHead: true,
  };
  const trunk = [
    ['wte.weight', [10, 4]],
    ['wpe.weight', [6, 4]],
    ['h.0.ln_1.weight', [4]],
    ['h.0.ln_1.bias', [4]],
    ['h.0.attn.c_attn.weight', [4, 12]],
    ['h.0.attn.c_attn.bias', [12]],
    ['h.0.attn.c_proj.weight', [4, 4]],
    ['h.0.attn.c_proj.bias', [4]],
    ['h.0.ln_2.weight', [4]],
    ['h.0.ln_2.bias', [4]],
    ['h.0.mlp.c_fc.weight', [4, 16]],
    ['h.0.mlp.c_fc.bias', [16]],
    ['h.0.mlp.c_proj.weight', [16, 4]],
    ['h.0.mlp.c_proj.bias', [4]],
    ['ln_f.weight', [4]],
    ['ln_f.bias', [4]],
  ];
  const listed = (specs: ReturnType<typeof paramSpecs>) => specs.map((s) => [s.name, s.shape]);
  assert.deepEqual(listed(paramSpecs(cfg)), trunk);
  assert.deepEqual(listed(paramSpecs({ ...cfg, tiedHead: false })), [...trunk, ['lm_head.weight', [10, 4]]]);
  const score = paramSpecs(cfg, { head: 'score', scoreBias: true });
  assert.deepEqual(listed(score), [...trunk, ['score.weight', [1, 4]], ['score.bias', [1]]]);
  const init = new Map(paramSpecs(cfg).map((s) => [s.name, s.init]));
  assert.deepEqual(init.get('wte.weight'), { normal: 0.02 });
  assert.deepEqual(init.get('h.0.mlp.c_proj.weight'), { normal: 0.02 / Math.sqrt(2) });
  assert.equal(init.get('h.0.ln_2.weight'), 'ones');
  assert.equal(init.get('h.0.attn.c_attn.bias'), 'zeros');
});

test('grouped-query attention: each KV head serves a run of consecutive query heads, as HF repeat_kv', async () => {
  const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });
  const grouped = toyConfig(2),
    params = randomParams(grouped, 1),
    groups = grouped.nHead / grouped.nKvHead;
  const square = [rows[0], [6, 2, 1, 0, 10, 3]];
  const ours = await logits(runtime, grouped, params, square);
  const worst = (other: Float32Array) => ours.reduce((m, x, i) => Math.max(m, Math.abs(x - other[i])), 0);
  const byGroup = copyKvHeads(params, grouped, (j) => Math.floor(j / groups));
  const repeated = await logits(runtime, toyConfig(4), byGroup, square);
  assert.ok(worst(repeated) < 1e-5, `max |logit difference| ${worst(repeated)}`);
  const tiled = await logits(
    runtime,
    toyConfig(4),
    copyKvHeads(params, grouped, (j) => j % grouped.nKvHead),
    square,
  );
  assert.ok(worst(tiled) > 1e-3, 'KV heads tiled across the query heads give other logits');
});

test('a registered architecture generates with the KV cache and trains through the SFT graph unchanged', async () => {
  const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });
  const cfg = toyConfig(2),
    state = new State(runtime);
  putTensors(state, randomParams(cfg, 3));
  const gen = await Generator.create(runtime, cfg, state, 0);
  const opts = { ...GREEDY, maxNewTokens: 6 };
  const cached = await gen.generate(rows, opts, 10, new Rng(1), true);
  assert.deepEqual(await gen.generate(rows, opts, 10, new Rng(1), false), cached);
  for (const [b, row] of rows.entries()) {
    assert.deepEqual((await gen.generate([row], opts, 10, new Rng(1)))[0], cached[b]);
  }
  await gen.release();

  const graph = sftLossGraph(cfg);
  const train = buildTrainGraph({ loss: graph.loss, params: graph.params, optimizer: adamw() });
  const step = await TrainStep.create(train, state);
  const batch = batchFeeds(
    makeBatch(
      rows.map((ids) => ({ ids, lossMask: ids.map(() => 1) })),
      5,
      0,
    ),
  );
  const losses = [];
  for (let at = 1; at <= 3; at++) losses.push((await step.run(batch, 0.05, at)).loss);
  assert.ok(losses[2] < losses[0], `loss ${losses.join(' → ')}`);
});

test("a registered architecture's checkpoint round-trips under its own names and config.json", () => {
  const cfg = toyConfig(2),
    params = randomParams(cfg, 4),
    dir = path.join(scratch, 'toy');
  saveCheckpoint(dir, { config: cfg, params });
  const hf = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const written = [hf.model_type, hf.architectures, hf.num_key_value_heads, hf.head_dim];
  assert.deepEqual(written, ['toy-gqa', ['ToyForCausalLM'], 2, 5]);
  assert.ok(readSafetensors(path.join(dir, 'model.safetensors')).tensors.has('model.k.weight'));
  const loaded = loadCheckpoint(dir);
  assert.deepEqual(loaded.config, cfg);
  assert.deepEqual([...loaded.params.keys()], [...params.keys()]);
  assert.deepEqual(loaded.params.get('v.weight'), params.get('v.weight'));
});

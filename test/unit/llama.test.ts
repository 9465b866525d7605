import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { grad } from '../../src/engine/autodiff';
import { gradCheck } from '../../src/engine/gradcheck';
import { crossEntropy } from '../../src/engine/nn';
import { toOnnx } from '../../src/engine/onnx';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { State } from '../../src/engine/state';
import { input, numel } from '../../src/engine/tensor';
import { applyRotary, linear } from '../../src/model/blocks';
import { loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint';
import { ModelConfig, PRESETS, configFromHF, configToHF, presetConfig, resizeConfig } from '../../src/model/config';
import { initParams, lmHead, paramInputs, paramSpecs, sequenceInputs, transformer } from '../../src/model/decoder';
import { attentionBias, positionIds } from '../../src/model/masks';
import { NamedTensor, readSafetensors } from '../../src/model/safetensors';
import { GREEDY, Generator } from '../../src/train/generate';
import { loadModel, putTensors } from '../../src/train/model-state';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../helpers/temp';

const scratch = tempDir('llama-test');

const torchAvailable = (() => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const needsTorch = {
  skip: torchAvailable ? false : 'PyTorch is not installed (apt-get install python3-torch libopenblas0-pthread)',
};

/** Logits [B, T, V] of left-padded rows of token ids, through paramInputs, transformer and lmHead. */
async function logits(runtime: Runtime, cfg: ModelConfig, params: Map<string, NamedTensor>, rows: number[][]) {
  const p = paramInputs(cfg);
  const program = await runtime.load(toOnnx({ logits: lmHead(p, cfg, transformer(p, cfg, sequenceInputs()).hidden) }));
  const b = rows.length,
    t = Math.max(...rows.map((r) => r.length));
  const ids = rows.flatMap((r) => [...Array(t - r.length).fill(0), ...r]);
  const mask = Float32Array.from(rows.flatMap((r) => [...Array(t - r.length).fill(0), ...Array(r.length).fill(1)]));
  const weights = [...params].map(([n, x]) => [n, hostTensor('float32', x.data as Float32Array, x.shape)]);
  const out = await program.run({
    ...Object.fromEntries(weights),
    tokens: hostTensor('int32', Int32Array.from(ids), [b, t]),
    positions: hostTensor('int32', positionIds(mask, b, t, t), [b, t]),
    attn_bias: hostTensor('float32', attentionBias(mask, b, t, t), [b, 1, t, t]),
  });
  await program.release();
  return { data: out.logits.data as Float32Array, t };
}

interface Reference {
  prompts: number[][];
  /** Each prompt alone, [T, V]. */
  logits: number[][][];
  greedy: number[][];
}

/** The PyTorch reference's checkpoints, one folder per case, written once for the tests below. */
const cases = (() => {
  if (!torchAvailable) return [];
  const out = path.join(scratch, 'cases');
  execFileSync('/usr/bin/python3', ['bench/reference/llama_torch.py', 'cases', '--out', out, '--new-tokens', '8']);
  return fs
    .readdirSync(out)
    .sort()
    .map((name) => path.join(out, name));
})();

test('the PyTorch reference writes every parity case', needsTorch, () => {
  const names = cases.map((c) => path.basename(c));
  assert.deepEqual(names, ['llama-gqa-tied', 'llama3-rope', 'qwen2-bias', 'qwen3-qknorm']);
});

for (const name of ['llama-gqa-tied', 'llama3-rope', 'qwen2-bias', 'qwen3-qknorm']) {
  test(
    `${name}: logits match the independent PyTorch model, and greedy continuations are its own with and without the KV cache`,
    needsTorch,
    async () => {
      const dir = path.join(scratch, 'cases', name);
      const ref: Reference = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
      const { config, params } = loadCheckpoint(dir);
      const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });
      const ours = await logits(runtime, config, params, ref.prompts);
      const v = config.vocabSize;
      let worst = 0;
      ref.prompts.forEach((prompt, b) => {
        const pad = ours.t - prompt.length;
        ref.logits[b].forEach((row, i) =>
          row.forEach((x, k) => {
            worst = Math.max(worst, Math.abs(ours.data[(b * ours.t + pad + i) * v + k] - x));
          }),
        );
      });
      assert.ok(worst <= 1e-4, `max |logit difference| ${worst}`);

      const state = new State(runtime);
      putTensors(state, params);
      const gen = await Generator.create(runtime, config, state, 0);
      const opts = { ...GREEDY, maxNewTokens: 8 };
      for (const useCache of [true, false]) {
        const out = await gen.generate(ref.prompts, opts, -1, new Rng(1), useCache);
        assert.deepEqual(
          out.map((g) => g.tokens),
          ref.greedy,
          `KV cache ${useCache ? 'on' : 'off'}`,
        );
      }
      await gen.release();
    },
  );
}

test(
  'the parity cases are what they claim: GQA, tied or not, biases, q/k norm, head_dim, llama3 scaling',
  needsTorch,
  () => {
    const load = (name: string) => loadCheckpoint(path.join(scratch, 'cases', name));
    const tied = load('llama-gqa-tied');
    assert.deepEqual([tied.config.nHead, tied.config.nKvHead, tied.config.tiedHead], [4, 2, true]);
    const qwen2 = load('qwen2-bias');
    assert.equal(qwen2.config.tiedHead, false);
    assert.ok(
      qwen2.params.has('layers.0.self_attn.k_proj.bias') && !qwen2.params.has('layers.0.self_attn.o_proj.bias'),
    );
    const qwen3 = load('qwen3-qknorm');
    const { headDim, nEmbd, nHead, ropeTheta } = qwen3.config;
    assert.deepEqual([headDim, nEmbd / nHead, ropeTheta], [24, 16, 50000]);
    assert.deepEqual(qwen3.params.get('layers.1.self_attn.q_norm.weight')?.shape, [24]);
    const scaled = load('llama3-rope');
    assert.equal(scaled.config.ropeScaling?.originalMaxPositionEmbeddings, 32);
    assert.ok(scaled.params.has('layers.0.mlp.down_proj.bias') && scaled.params.has('layers.0.self_attn.o_proj.bias'));
  },
);

test('a Llama checkpoint round-trips under HF names: model.* trunk, [out, in] Linear weights, config.json fields', () => {
  const cfg = { ...presetConfig('tiny-llama'), nLayer: 1, tiedHead: false };
  const params = initParams(cfg, new Rng(2));
  const dir = path.join(scratch, 'roundtrip');
  saveCheckpoint(dir, { config: cfg, params });
  const names = [...readSafetensors(path.join(dir, 'model.safetensors')).tensors.keys()].sort();
  assert.ok(
    names.includes('model.embed_tokens.weight') &&
      names.includes('lm_head.weight') &&
      names.includes('model.norm.weight'),
  );
  const tensors = readSafetensors(path.join(dir, 'model.safetensors')).tensors;
  assert.deepEqual(tensors.get('model.layers.0.self_attn.k_proj.weight')?.shape, [2 * 32, 128]);
  assert.deepEqual(tensors.get('model.layers.0.mlp.down_proj.weight')?.shape, [128, 352]);
  const hf = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(hf.architectures, ['LlamaForCausalLM']);
  const fields = [
    'hidden_size',
    'intermediate_size',
    'num_hidden_layers',
    'num_attention_heads',
    'num_key_value_heads',
    'head_dim',
    'rms_norm_eps',
    'rope_theta',
    'rope_scaling',
    'tie_word_embeddings',
    'attention_bias',
    'mlp_bias',
    'hidden_act',
  ];
  assert.deepEqual(
    fields.map((k) => hf[k]),
    [128, 352, 1, 4, 2, 32, 1e-5, 10000, null, false, false, false, 'silu'],
  );
  const loaded = loadCheckpoint(dir);
  assert.deepEqual(loaded.config, cfg);
  assert.deepEqual(
    loaded.params.get('layers.0.self_attn.q_proj.weight'),
    params.get('layers.0.self_attn.q_proj.weight'),
  );
});

test('every Llama-family preset is valid, reads back from its own config.json, and has its real parameter count', () => {
  // Parameter counts of the Hub models (tied heads).
  const expected: Record<string, number> = {
    'smollm2-135m': 134515008,
    'smollm2-360m': 361821120,
    'qwen2.5-0.5b': 494032768,
    'qwen3-0.6b': 596049920,
    'llama-3.2-1b': 1235814400,
  };
  for (const [name, count] of Object.entries(expected)) {
    const cfg = presetConfig(name);
    assert.deepEqual(configFromHF(configToHF(cfg), 'c.json').config, cfg, name);
    const n = paramSpecs(cfg).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(n, count, name);
  }
  assert.ok(
    Object.values(PRESETS).some((p) => p.modelType === 'qwen2') &&
      PRESETS['tiny-llama'].nKvHead < PRESETS['tiny-llama'].nHead,
  );
});

test('loadModel: a preset of another vocabulary than its tokenizer is refused by name; tiny-llama loads with model_size', () => {
  assert.throws(
    () => loadModel('smollm2-135m', 0),
    /model "smollm2-135m": vocab_size 49152 is smaller than the 50257 tokens of the tokenizer \(gpt2\)/,
  );
  const { config } = loadModel('tiny-llama', 0, { n_layer: 1, n_embd: 32, n_head: 2 });
  assert.deepEqual([config.modelType, config.nHead, config.nKvHead, config.headDim], ['llama', 2, 1, 16]);
  assert.equal(
    resizeConfig(presetConfig('qwen3-0.6b'), { nLayer: 1 }).headDim,
    128,
    'head_dim kept when only the depth changes',
  );
});

const hfConfig = (extra: Record<string, unknown>) => ({
  model_type: 'llama',
  vocab_size: 60000,
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 1,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  ...extra,
});

test('config.json: settings the forward does not compute are refused, naming the field', () => {
  const refused = (extra: Record<string, unknown>, message: RegExp) =>
    assert.throws(() => configFromHF(hfConfig(extra), 'm/config.json'), message);
  refused(
    { rope_scaling: { rope_type: 'yarn', factor: 4 } },
    /^Error: m\/config\.json: rope_scaling\.rope_type "yarn" is not supported/,
  );
  refused(
    { rope_scaling: { type: 'linear', factor: 2 } },
    /m\/config\.json: rope_scaling\.type "linear" is not supported/,
  );
  refused(
    { rope_parameters: { rope_type: 'dynamic', rope_theta: 1e4 } },
    /rope_parameters\.rope_type "dynamic" is not supported/,
  );
  refused(
    { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 } },
    /rope_scaling\.original_max_position_embeddings must be a positive number, got undefined/,
  );
  refused({ hidden_act: 'gelu' }, /m\/config\.json: hidden_act = "gelu" is not supported/);
  refused({ partial_rotary_factor: 0.5 }, /partial_rotary_factor = 0\.5 is not supported/);
  refused({ model_type: 'qwen2', use_sliding_window: true }, /use_sliding_window = true is not supported/);
  refused(
    { model_type: 'qwen3', layer_types: ['full_attention', 'sliding_attention'] },
    /layer_types = .* is not supported/,
  );
  refused({ head_dim: 15 }, /headDim \(15\) must be even/);
});

test('config.json: HF defaults and both forms of the rotary settings; other keys are kept for the save', () => {
  const plain = configFromHF(hfConfig({ bos_token_id: 1, eos_token_id: [2, 3], rope_scaling: null }), 'c.json').config;
  const read = [plain.ropeTheta, plain.ropeScaling, plain.layerNormEpsilon, plain.tiedHead, plain.headDim];
  assert.deepEqual(read, [10000, undefined, 1e-6, false, 16]);
  assert.deepEqual(plain.hfExtra, { bos_token_id: 1, eos_token_id: [2, 3] });
  const v5 = configFromHF(
    hfConfig({
      rope_parameters: {
        rope_type: 'llama3',
        rope_theta: 5e5,
        factor: 32,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    }),
    'c.json',
  ).config;
  assert.deepEqual(
    [v5.ropeTheta, v5.ropeScaling],
    [5e5, { ropeType: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 }],
  );
  const written = configToHF(v5);
  assert.deepEqual(
    [written.rope_theta, written.rope_scaling, written.eos_token_id],
    [
      5e5,
      {
        rope_type: 'llama3',
        factor: 32,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
      undefined,
    ],
  );
  const qwen3 = configFromHF(
    { model_type: 'qwen3', architectures: ['Qwen3ForSequenceClassification'], num_labels: 1 },
    'c.json',
  );
  assert.deepEqual([qwen3.head, qwen3.config.headDim, qwen3.config.nKvHead], ['score', 128, 32]);
});

test('a reward model on a Qwen2 trunk saves as Qwen2ForSequenceClassification with score.weight beside model.*', () => {
  const cfg: ModelConfig = { ...presetConfig('tiny-llama'), modelType: 'qwen2', nLayer: 1 };
  delete cfg.attentionBias;
  delete cfg.mlpBias;
  const params = initParams(cfg, new Rng(3), 'score');
  const dir = path.join(scratch, 'qwen2-rm');
  saveCheckpoint(dir, { config: cfg, params });
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).architectures, [
    'Qwen2ForSequenceClassification',
  ]);
  const names = [...readSafetensors(path.join(dir, 'model.safetensors')).tensors.keys()];
  assert.ok(names.includes('score.weight') && names.includes('model.layers.0.self_attn.q_proj.bias'));
  assert.equal(loadCheckpoint(dir).head, 'score');
  assert.throws(
    () => saveCheckpoint(path.join(scratch, 'bad'), { config: { ...cfg, mlpBias: true }, params }),
    /mlpBias is not a setting of qwen2/,
  );
});

const normal = (n: number, seed: number, scale = 1) => {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n }, () => rng.normal() * scale);
};

test('grad check: rotary embedding applied to heads (rotate_half pairing, cos and sin held fixed)', async () => {
  const [b, h, t, hd] = [1, 2, 3, 4];
  const angles = normal((b * t * hd) / 2, 5, 2);
  const table = (f: (a: number) => number, sign: number) =>
    Float64Array.from({ length: b * t * hd }, (_, i) => {
      const col = i % hd,
        a = angles[Math.floor(i / hd) * (hd / 2) + (col % (hd / 2))];
      return (col < hd / 2 ? sign : 1) * f(a);
    });
  const res = await gradCheck(
    (x, c, sn) => applyRotary(x, { cos: c, sin: sn }),
    [
      { name: 'x', shape: [b, h, t, hd], data: normal(b * h * t * hd, 6) },
      { name: 'cos', shape: [b, 1, t, hd], data: table(Math.cos, 1), fixed: true },
      { name: 'sin', shape: [b, 1, t, hd], data: table(Math.sin, -1), fixed: true },
    ],
  );
  assert.ok(res.maxRelError <= 1e-5, JSON.stringify(res));
});

test('grad check: a torch.nn.Linear block, weight [out, in], with bias', async () => {
  const res = await gradCheck(
    (x, w, bias) => linear(x, { 'p.weight': w, 'p.bias': bias }, 'p'),
    [
      { name: 'x', shape: [2, 3, 4], data: normal(24, 7) },
      { name: 'w', shape: [5, 4], data: normal(20, 8) },
      { name: 'b', shape: [5], data: normal(5, 9) },
    ],
  );
  assert.ok(res.maxRelError <= 1e-5, JSON.stringify(res));
});

/**
 * d loss / d θ along a random direction, for each parameter in turn: the autodiff gradient against
 * central differences of the float32 loss, over a left-padded batch. Every block's backward is in it.
 */
async function directionalCheck(cfg: ModelConfig): Promise<string[]> {
  const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });
  const p = paramInputs(cfg),
    names = Object.keys(p);
  const targets = input('targets', 'int32', ['B', 'T']),
    real = input('real', 'float32', ['B', 'T']);
  const loss = crossEntropy(lmHead(p, cfg, transformer(p, cfg, sequenceInputs()).hidden), targets, real);
  const grads = grad(
    loss,
    names.map((n) => p[n]),
  );
  const withGrads = await runtime.load(
    toOnnx({ loss, ...Object.fromEntries(grads.map((g, i) => [`grad:${names[i]}`, g])) }),
  );
  const lossOnly = await runtime.load(toOnnx({ loss }));
  // Matrices N(0, 0.3²) (unit-sized activations), norms 1 ± 0.1, biases N(0, 0.1²).
  const rng = new Rng(4);
  const params = new Map(
    paramSpecs(cfg).map(({ name, shape }): [string, NamedTensor] => {
      const [mean, std] = shape.length === 2 ? [0, 0.3] : name.endsWith('norm.weight') ? [1, 0.1] : [0, 0.1];
      return [
        name,
        { dtype: 'float32', shape, data: Float32Array.from({ length: numel(shape) }, () => mean + std * rng.normal()) },
      ];
    }),
  );
  const mask = Float32Array.from([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  const feeds: Record<string, ReturnType<typeof hostTensor>> = {
    tokens: hostTensor('int32', Int32Array.from([0, 0, 3, 9, 4, 1, 7, 2, 8, 8, 5, 6]), [2, 6]),
    targets: hostTensor('int32', Int32Array.from([0, 0, 9, 4, 1, 7, 2, 8, 8, 5, 6, 3]), [2, 6]),
    real: hostTensor('float32', mask, [2, 6]),
    positions: hostTensor('int32', positionIds(mask, 2, 6, 6), [2, 6]),
    attn_bias: hostTensor('float32', attentionBias(mask, 2, 6, 6), [2, 1, 6, 6]),
  };
  const lossAt = async (name: string, v: Float32Array, h: number) => {
    const base = params.get(name)!.data as Float32Array;
    const moved = base.map((x, i) => x + h * v[i]);
    const res = await lossOnly.run({
      ...feeds,
      ...weights(params),
      [name]: hostTensor('float32', moved, params.get(name)!.shape),
    });
    return (res.loss.data as Float32Array)[0];
  };
  const analytic = await withGrads.run({ ...feeds, ...weights(params) });
  const bad: string[] = [];
  for (const [k, name] of names.entries()) {
    const v = Float32Array.from(normal(numel(params.get(name)!.shape), 100 + k));
    const g = analytic[`grad:${name}`].data as Float32Array;
    const along = g.reduce((s, x, i) => s + x * v[i], 0);
    const h = 1e-3,
      numeric = ((await lossAt(name, v, h)) - (await lossAt(name, v, -h))) / (2 * h);
    if (Math.abs(along - numeric) > 1e-2 * Math.abs(numeric) + 1e-3) bad.push(`${name}: ${along} vs ${numeric}`);
  }
  return bad;
}

const weights = (params: Map<string, NamedTensor>) =>
  Object.fromEntries([...params].map(([n, t]) => [n, hostTensor('float32', t.data as Float32Array, t.shape)]));

/** A small model of `family` with every option it has turned on. */
function everyOption(modelType: string, extra: Partial<ModelConfig>): ModelConfig {
  return {
    modelType,
    vocabSize: 10,
    nPositions: 16,
    nEmbd: 12,
    nLayer: 2,
    nHead: 4,
    nKvHead: 2,
    headDim: 6,
    layerNormEpsilon: 1e-6,
    tiedHead: false,
    intermediateSize: 20,
    ropeTheta: 100,
    ropeScaling: {
      ropeType: 'llama3',
      factor: 4,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8,
    },
    ...extra,
  };
}

const families: [string, Partial<ModelConfig>][] = [
  ['llama', { attentionBias: true, mlpBias: true }],
  ['qwen2', {}],
  ['qwen3', { attentionBias: true, tiedHead: true }],
];
for (const [modelType, extra] of families) {
  test(`${modelType}: the gradient of every parameter matches central differences of the loss`, async () => {
    const bad = await directionalCheck(everyOption(modelType, extra));
    assert.deepEqual(bad, []);
  });
}

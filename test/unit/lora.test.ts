import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { gradCheck } from '../../src/engine/gradcheck';
import { toOnnx } from '../../src/engine/onnx';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { scalar } from '../../src/engine/tensor';
import { conv1d, linear } from '../../src/model/blocks';
import { loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint';
import { gpt2Tokenizer } from '../../src/model/tokenizer';
import { ModelConfig, PRESETS, resizeConfig } from '../../src/model/config';
import { initParams, lmHead, sequenceInputs, transformer } from '../../src/model/decoder';
import { LoraAdapter, LoraConfig, mergeLora, modelInputs, newAdapter } from '../../src/model/lora';
import { attentionBias, positionIds } from '../../src/model/masks';
import { NamedTensor } from '../../src/model/safetensors';
import { loadAdapterFolder } from '../../src/train/adapters';
import { Rng } from '../../src/util/rng';
import { LORA } from '../helpers/lora-config';
import { tempDir } from '../helpers/temp';

export const GPT2: ModelConfig = resizeConfig(PRESETS.tiny, { nEmbd: 32, nHead: 4, nLayer: 2, vocabSize: 97 });
export const LLAMA: ModelConfig = {
  ...resizeConfig(PRESETS['tiny-llama'], { nEmbd: 32, nHead: 4, nLayer: 2, vocabSize: 97 }),
  intermediateSize: 48,
};

const rows = [
  [5, 17, 3, 88, 42, 9],
  [61, 2],
];

/** Logits of left-padded rows through the model, with `adapter` on it when given. */
export async function modelLogits(
  cfg: ModelConfig,
  params: Map<string, NamedTensor>,
  adapter?: LoraAdapter,
  batch = rows,
): Promise<Float32Array> {
  const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });
  const p = modelInputs(cfg, 'lm', '', adapter && { adapter });
  const program = await runtime.load(toOnnx({ logits: lmHead(p, cfg, transformer(p, cfg, sequenceInputs()).hidden) }));
  const b = batch.length,
    t = Math.max(...batch.map((r) => r.length));
  const ids = batch.flatMap((r) => [...Array(t - r.length).fill(0), ...r]);
  const mask = Float32Array.from(batch.flatMap((r) => [...Array(t - r.length).fill(0), ...Array(r.length).fill(1)]));
  const weights = [...params, ...(adapter?.weights ?? [])].map(([n, x]) => [
    n,
    hostTensor('float32', x.data as Float32Array, x.shape),
  ]);
  const out = await program.run({
    ...Object.fromEntries(weights),
    tokens: hostTensor('int32', Int32Array.from(ids), [b, t]),
    positions: hostTensor('int32', positionIds(mask, b, t, t), [b, t]),
    attn_bias: hostTensor('float32', attentionBias(mask, b, t, t), [b, 1, t, t]),
  });
  await program.release();
  return out.logits.data as Float32Array;
}

/** An adapter whose B matrices are drawn too, so it changes the model. */
export function trainedAdapter(cfg: ModelConfig, config: LoraConfig, seed: number): LoraAdapter {
  const adapter = newAdapter(config, cfg, 'lm', 'base', new Rng(seed), 'peft');
  const rng = new Rng(seed + 1);
  for (const [name, t] of adapter.weights)
    if (name.endsWith('lora_B.weight')) (t.data as Float32Array).forEach((_, i, a) => (a[i] = rng.normal() * 0.05));
  return adapter;
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

for (const [family, cfg, targets, perLayer] of [
  ['GPT-2', GPT2, ['c_attn', 'c_proj', 'c_fc'], 4],
  ['llama', LLAMA, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], 7],
] as const) {
  test(`${family}: a fresh adapter (B = 0) gives exactly the base's logits`, async () => {
    const params = initParams(cfg, new Rng(1));
    const adapter = newAdapter(LORA, cfg, 'lm', 'base', new Rng(2), 'peft');
    assert.equal(adapter.modules.length, perLayer * cfg.nLayer);
    assert.deepEqual(await modelLogits(cfg, params, adapter), await modelLogits(cfg, params));
  });

  test(`${family}: the adapted forward equals the merged model's (≤ 1e-5), and differs from the base`, async () => {
    const params = initParams(cfg, new Rng(1));
    for (const use_rslora of [false, true]) {
      const adapter = trainedAdapter(cfg, { ...LORA, target_modules: [...targets], use_rslora }, 3);
      const adapted = await modelLogits(cfg, params, adapter);
      assert.ok(maxDiff(adapted, await modelLogits(cfg, mergeLora(params, adapter))) <= 1e-5);
      assert.ok(maxDiff(adapted, await modelLogits(cfg, params)) > 1e-3, 'the adapter changes the logits');
    }
  });
}

test('target_modules match module names by suffix, as PEFT does, or by a regex in full', () => {
  const names = (t: string[] | string) =>
    newAdapter({ ...LORA, target_modules: t }, GPT2, 'lm', 'b', new Rng(0), 'p').modules.map((m) => m.name);
  assert.deepEqual(names(['c_attn']), ['h.0.attn.c_attn', 'h.1.attn.c_attn']);
  assert.deepEqual(names(['mlp.c_proj']), ['h.0.mlp.c_proj', 'h.1.mlp.c_proj']);
  assert.deepEqual(names(['transformer.h.1.attn.c_attn']), ['h.1.attn.c_attn']);
  assert.deepEqual(names('.*\\.0\\..*c_(attn|fc)'), ['h.0.attn.c_attn', 'h.0.mlp.c_fc']);
  assert.equal(names('all-linear').length, 8, 'all-linear: every projection, not the tied LM head');
});

test('bad settings name the field: targets matching nothing list the modules, r ≤ 0, an unknown saved module', () => {
  const make =
    (c: Partial<LoraConfig>, cfg = GPT2) =>
    () =>
      newAdapter({ ...LORA, ...c }, cfg, 'lm', 'b', new Rng(0), 'sft.peft');
  assert.throws(
    make({ target_modules: ['q_proj'] }),
    /sft\.peft: target_modules \["q_proj"\] match no module.*c_attn, c_proj, c_fc/,
  );
  assert.throws(
    make({ target_modules: ['c_attn'] }, LLAMA),
    /q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj/,
  );
  assert.throws(make({ r: 0 }), /sft\.peft: r must be a positive integer, got 0/);
  assert.throws(make({ modules_to_save: ['classifier'] }), /sft\.peft: modules_to_save "classifier" names no module/);
});

test('lora_A starts kaiming-uniform (a = sqrt(5)): within ±1/sqrt(in), spread over it; lora_B at zero', () => {
  const adapter = newAdapter({ ...LORA, r: 8, target_modules: ['c_fc'] }, GPT2, 'lm', 'b', new Rng(5), 'p');
  const a = adapter.weights.get('h.0.mlp.c_fc.lora_A.weight')!;
  assert.deepEqual(a.shape, [8, 32]);
  const bound = 1 / Math.sqrt(32);
  const values = [...(a.data as Float32Array)];
  assert.ok(values.every((v) => Math.abs(v) <= bound));
  assert.ok(Math.max(...values) > 0.9 * bound && Math.min(...values) < -0.9 * bound);
  const b = adapter.weights.get('h.0.mlp.c_fc.lora_B.weight')!;
  assert.deepEqual(b.shape, [128, 8]);
  assert.ok((b.data as Float32Array).every((v) => v === 0));
});

const normal = (n: number, seed: number) => {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n }, () => rng.normal());
};

test('grad check through the LoRA path of a Linear and a Conv1D projection (x, W, A, B)', async () => {
  for (const [block, wShape] of [
    [linear, [5, 4]],
    [conv1d, [4, 5]],
  ] as const) {
    const res = await gradCheck(
      (x, w, a, b) =>
        block(
          x,
          { 'p.weight': w, 'p.lora_A.weight': a, 'p.lora_B.weight': b, 'p.lora_scaling': scalar(1.5, 'float64') },
          'p',
        ),
      [
        { name: 'x', shape: [2, 3, 4], data: normal(24, 7) },
        { name: 'w', shape: [...wShape], data: normal(20, 8) },
        { name: 'a', shape: [2, 4], data: normal(8, 9) },
        { name: 'b', shape: [5, 2], data: normal(10, 10) },
      ],
    );
    assert.ok(res.maxRelError <= 1e-5, JSON.stringify(res));
  }
});

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

for (const [family, cfg, targets] of [
  ['gpt2', GPT2, ['c_attn', 'mlp.c_proj']],
  ['llama', LLAMA, ['q_proj', 'v_proj', 'down_proj']],
] as const) {
  test(
    `${family}: a PEFT adapter written by the independent PyTorch LoRA loads here and gives its logits`,
    needsTorch,
    async () => {
      const scratch = tempDir('lora-torch');
      const base = path.join(scratch, 'base'),
        adapterDir = path.join(scratch, 'adapter');
      saveCheckpoint(base, { config: cfg, params: initParams(cfg, new Rng(11)) });
      execFileSync('/usr/bin/python3', [
        'bench/reference/lora_torch.py',
        'adapter',
        '--base',
        base,
        '--family',
        family,
        '--out',
        adapterDir,
        '--targets',
        ...targets,
        '--r',
        '4',
        '--alpha',
        '12',
        '--rslora',
      ]);
      const ref: { prompts: number[][]; logits: number[][][] } = JSON.parse(
        fs.readFileSync(path.join(adapterDir, 'reference.json'), 'utf8'),
      );
      // The toy vocabulary holds fewer ids than a real tokenizer, so the base loads without that check.
      const model = loadAdapterFolder(adapterDir, (dir) => {
        const c = loadCheckpoint(dir);
        return { ...c, checkpoint: c, tokenizer: gpt2Tokenizer() };
      });
      assert.equal(model.adapter!.modules.length, targets.length * cfg.nLayer);
      let worst = 0;
      for (const [b, prompt] of ref.prompts.entries()) {
        const ours = await modelLogits(model.config, model.params, model.adapter, [prompt]);
        ref.logits[b].flat().forEach((x, i) => (worst = Math.max(worst, Math.abs(ours[i] - x))));
      }
      assert.ok(worst <= 1e-4, `max |Δlogit| ${worst}`);
      // And without the adapter the logits differ: the adapter is what matches.
      const plain = await modelLogits(model.config, model.params, undefined, [ref.prompts[0]]);
      assert.ok(ref.logits[0].flat().some((x, i) => Math.abs(plain[i] - x) > 1e-3));
    },
  );
}

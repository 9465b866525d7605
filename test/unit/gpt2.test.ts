import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { toOnnx } from '../../src/engine/onnx';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { State } from '../../src/engine/state';
import { saveCheckpoint } from '../../src/model/checkpoint';
import { ModelConfig } from '../../src/model/config';
import { lmHead, paramInputs, paramShapes, sequenceInputs, transformer } from '../../src/model/decoder';
import { attentionBias, positionIds } from '../../src/model/masks';
import { GREEDY, Generator } from '../../src/train/generate';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../helpers/temp';

const cfg: ModelConfig = {
  modelType: 'gpt2',
  vocabSize: 97,
  nPositions: 32,
  nEmbd: 32,
  nLayer: 2,
  nHead: 4,
  nKvHead: 4,
  headDim: 8,
  layerNormEpsilon: 1e-5,
  tiedHead: true,
};

/** Random weights large enough that logits differ clearly between tokens. */
function randomParams(seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of paramShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNormWeight = /ln_\d|ln_f/.test(name) && name.endsWith('.weight');
    out.set(
      name,
      Float32Array.from({ length: n }, () => (isNormWeight ? 1 : 0) + rng.normal() * 0.2),
    );
  }
  return out;
}

async function setup() {
  const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });
  const state = new State(runtime);
  const params = randomParams(7);
  const shapes = paramShapes(cfg);
  for (const [name, data] of params) state.setHost(name, data, shapes.get(name)!);
  const p = paramInputs(cfg);
  const inp = sequenceInputs();
  const logits = lmHead(p, cfg, transformer(p, cfg, inp).hidden);
  const forward = await runtime.load(toOnnx({ logits }));
  /** Logits [B, T, V] for left-padded rows of token ids. */
  const run = async (rows: number[][]) => {
    const b = rows.length,
      t = Math.max(...rows.map((r) => r.length));
    const ids = rows.flatMap((r) => [...Array(t - r.length).fill(0), ...r]);
    const mask = Float32Array.from(rows.flatMap((r) => [...Array(t - r.length).fill(0), ...Array(r.length).fill(1)]));
    const feeds: Record<string, ReturnType<typeof hostTensor>> = {
      tokens: hostTensor('int32', Int32Array.from(ids), [b, t]),
      positions: hostTensor('int32', positionIds(mask, b, t, t), [b, t]),
      attn_bias: hostTensor('float32', attentionBias(mask, b, t, t), [b, 1, t, t]),
    };
    for (const name of paramShapes(cfg).keys()) feeds[name] = state.get(name);
    return { logits: (await forward.run(feeds)).logits.data as Float32Array, mask, t };
  };
  return { runtime, state, params, run };
}

const rows = [
  [5, 17, 3, 88, 42, 9],
  [61, 2],
  [30, 31, 32, 33],
];

test('left-padded batches give the same logits as each prompt alone', async () => {
  const { run } = await setup();
  const batched = await run(rows);
  for (const [b, row] of rows.entries()) {
    const alone = await run([row]);
    const pad = batched.t - row.length;
    for (let i = 0; i < row.length; i++) {
      for (let v = 0; v < cfg.vocabSize; v++) {
        const x = batched.logits[(b * batched.t + pad + i) * cfg.vocabSize + v];
        const y = alone.logits[i * cfg.vocabSize + v];
        assert.ok(Math.abs(x - y) < 1e-4, `row ${b} position ${i} token ${v}: ${x} vs ${y}`);
      }
    }
  }
});

test('greedy decoding with the KV cache equals decoding without it, batched and alone', async () => {
  const { runtime, state } = await setup();
  const gen = await Generator.create(runtime, cfg, state, 0);
  const opts = { ...GREEDY, maxNewTokens: 10 };
  const cached = await gen.generate(rows, opts, 96, new Rng(1), true);
  const uncached = await gen.generate(rows, opts, 96, new Rng(1), false);
  assert.deepEqual(cached, uncached);
  for (const [b, row] of rows.entries())
    assert.deepEqual((await gen.generate([row], opts, 96, new Rng(1)))[0], cached[b]);
  assert.ok(cached.every((g) => g.tokens.length > 0));
});

test("groups of continuations share each prompt's prefill and draw what the repeated prompts draw", async () => {
  const { runtime, state } = await setup();
  const gen = await Generator.create(runtime, cfg, state, 0);
  const repeated = rows.flatMap((r) => [r, r, r]);
  for (const opts of [
    { temperature: 1, topK: 0, topP: 1, maxNewTokens: 8 },
    { ...GREEDY, maxNewTokens: 8 },
  ]) {
    const grouped = await gen.generateGroups(rows, 3, opts, 96, new Rng(9));
    const separate = await gen.generate(repeated, opts, 96, new Rng(9));
    // The same tokens; log-probs to float rounding (a batch of another size may sum in another order).
    assert.deepEqual(
      grouped.map((g) => [g.tokens, g.finished]),
      separate.map((g) => [g.tokens, g.finished]),
    );
    grouped.forEach((g, i) =>
      g.logprobs.forEach((lp, j) => assert.ok(Math.abs(lp - separate[i].logprobs[j]) < 1e-5, `${lp} at ${i}, ${j}`)),
    );
    if (opts.temperature > 0) assert.ok(new Set(grouped.slice(0, 3).map((g) => g.tokens.join())).size > 1);
  }
});

test('rows that finish leave the batch; the others write what they write alone or without the cache', async () => {
  const { runtime, state } = await setup();
  const gen = await Generator.create(runtime, cfg, state, 0);
  const tokensOf = (gs: { tokens: number[]; finished: boolean }[]) => gs.map((g) => [g.tokens, g.finished]);
  for (const opts of [
    { ...GREEDY, maxNewTokens: 10 },
    { temperature: 1, topK: 0, topP: 1, maxNewTokens: 10 },
  ]) {
    // A stop token that row 1 writes third: it finishes early, the others go on.
    const open = await gen.generate(rows, opts, -1, new Rng(3));
    const stop = open[1].tokens[2];
    const cached = await gen.generate(rows, opts, stop, new Rng(3));
    assert.ok(cached[1].finished && cached[1].tokens.length <= 3);
    assert.ok(
      cached.some((g) => g.tokens.length > 3),
      'some row outlives the finished one',
    );
    assert.deepEqual(tokensOf(cached), tokensOf(await gen.generate(rows, opts, stop, new Rng(3), false)));
    if (opts.temperature > 0) continue; // a finished row draws no more, so the later rows' draws move up
    for (const [b, g] of cached.entries()) {
      assert.deepEqual(g.tokens, open[b].tokens.slice(0, g.tokens.length), `row ${b} ends where it wrote the stop`);
      assert.deepEqual((await gen.generate([rows[b]], opts, stop, new Rng(3)))[0], g);
    }
  }
});

test("each drawn token's log-prob is its log-softmax(logits / temperature) in a pass over the whole sequence", async () => {
  const { runtime, state, run } = await setup();
  const gen = await Generator.create(runtime, cfg, state, 0);
  const temperature = 0.7;
  const out = await gen.generate(rows, { temperature, topK: 0, topP: 1, maxNewTokens: 6 }, -1, new Rng(2));
  for (const [b, g] of out.entries()) {
    const seq = [...rows[b], ...g.tokens];
    const { logits } = await run([seq]);
    g.tokens.forEach((token, j) => {
      const at = (rows[b].length - 1 + j) * cfg.vocabSize;
      const scaled = Array.from(logits.subarray(at, at + cfg.vocabSize), (l) => l / temperature);
      const top = Math.max(...scaled);
      const logZ = top + Math.log(scaled.reduce((a, l) => a + Math.exp(l - top), 0));
      assert.ok(Math.abs(g.logprobs[j] - (scaled[token] - logZ)) < 1e-4, `row ${b} token ${j}`);
    });
  }
});

test('sampling is reproducible from the seed', async () => {
  const { runtime, state } = await setup();
  const gen = await Generator.create(runtime, cfg, state, 0);
  const opts = { temperature: 1, topK: 3, topP: 0.9, maxNewTokens: 8 };
  const a = await gen.generate(rows, opts, 96, new Rng(5));
  const b = await gen.generate(rows, opts, 96, new Rng(5));
  assert.deepEqual(a, b);
});

const torchAvailable = (() => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test(
  'logits match an independent PyTorch GPT-2 on the same safetensors file',
  { skip: torchAvailable ? false : 'PyTorch is not installed (apt-get install python3-torch libopenblas0-pthread)' },
  async () => {
    const { params, run } = await setup();
    const dir = tempDir('parity');
    const shapes = paramShapes(cfg);
    saveCheckpoint(path.join(dir, 'ckpt'), {
      config: cfg,
      params: new Map([...params].map(([n, d]) => [n, { dtype: 'float32', shape: shapes.get(n)!, data: d }])),
    });
    const ours = await run(rows);
    const t = ours.t;
    const ids = rows.map((r) => [...Array(t - r.length).fill(0), ...r]);
    const mask = rows.map((r) => [...Array(t - r.length).fill(0), ...Array(r.length).fill(1)]);
    const positions = Array.from(positionIds(ours.mask, rows.length, t, t));
    fs.writeFileSync(
      path.join(dir, 'in.json'),
      JSON.stringify({
        input_ids: ids,
        attention_mask: mask,
        position_ids: rows.map((_, b) => positions.slice(b * t, (b + 1) * t)),
      }),
    );
    execFileSync('/usr/bin/python3', [
      'bench/reference/parity.py',
      '--checkpoint',
      path.join(dir, 'ckpt'),
      '--input',
      path.join(dir, 'in.json'),
      '--output',
      path.join(dir, 'out.json'),
    ]);
    const theirs = (JSON.parse(fs.readFileSync(path.join(dir, 'out.json'), 'utf8')).logits as number[][][]).flat(2);
    let worst = 0;
    rows.forEach((row, b) => {
      for (let i = t - row.length; i < t; i++) {
        for (let v = 0; v < cfg.vocabSize; v++) {
          const k = (b * t + i) * cfg.vocabSize + v;
          worst = Math.max(worst, Math.abs(ours.logits[k] - theirs[k]));
        }
      }
    });
    assert.ok(worst <= 1e-4, `max |logit difference| ${worst}`);
  },
);

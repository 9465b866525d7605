/**
 * The WebGPU path against CPU. Skipped when no WebGPU adapter is available; on a Linux box without
 * a GPU, `scripts/install-vulkan.sh` (Debian) installs Mesa's software Vulkan driver, which is
 * enough (slow, so these runs are small).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import type * as ort from 'onnxruntime-node';
import * as nn from '../../src/engine/nn';
import * as ops from '../../src/engine/ops';
import { OnnxModel, toOnnx } from '../../src/engine/onnx';
import { adamw } from '../../src/engine/optim';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { State } from '../../src/engine/state';
import { TrainStep } from '../../src/engine/step';
import { TrainGraph, buildTrainGraph } from '../../src/engine/train-graph';
import { Tensor, constant, input } from '../../src/engine/tensor';
import { Rng } from '../../src/util/rng';
import { presetConfig, resizeConfig } from '../../src/model/config';
import { paramShapes } from '../../src/model/decoder';
import { sftLossGraph } from '../../src/train/sft';
import { newAdapter } from '../../src/model/lora';
import { LORA } from '../helpers/lora-config';
import { fusedLinearCrossEntropy } from '../../src/engine/linear-cross-entropy';
import { CHUNK_LOGITS_BYTES } from '../../src/engine/token-chunks';
import { grad } from '../../src/engine/autodiff';
import { fusedLinearLogprobs } from '../../src/engine/linear-logprobs';
import { parseExperiment } from '../../src/experiment/config';
import { dpoLossGraph, referenceLogpsGraph } from '../../src/train/dpo-loss';
import {
  groupInputs,
  rolloutGraph as groupRolloutGraph,
  updateGraph as groupUpdateGraph,
} from '../../src/train/group-graphs';
import { rolloutGraph as ppoRolloutGraph, updateGraph as ppoUpdateGraph } from '../../src/train/ppo-graphs';
import { rewardInputs, rewardParamInputs, rewards } from '../../src/model/reward';
import { rewardLossGraph } from '../../src/train/reward';
import { Generator } from '../../src/train/generate';
import { tempDir } from '../helpers/temp';

// Mesa complains on stderr when this is unset; the driver reads it when onnxruntime loads it.
const runtimeDir = process.env.XDG_RUNTIME_DIR ? undefined : tempDir('xdg');
if (runtimeDir) process.env.XDG_RUNTIME_DIR = runtimeDir;

/*
 * Tolerances. Both providers compute in float32 and differ only in the order of additions inside
 * matmuls and reductions. Measured with Mesa lavapipe 25.0 against the CPU provider on the block
 * model below: losses within 1.2e-6 and parameters within 6e-7 over 200 steps (100 steps: 1.2e-6,
 * 3.6e-7 over parameters and AdamW slots). The bounds leave ~100x room for other drivers and GPUs,
 * yet a 0.1% error in every update (the learning rate times 1.001, on CPU) already moves the losses
 * by 1.1e-3 and the parameters by 2.7e-4 within 100 steps: 10x the bounds.
 */
const LOSS_TOL = 1e-4;
const PARAM_TOL = 5e-5;
const STEPS = 100;

let gpu: Runtime | undefined;
let unavailable = '';

before(async () => {
  try {
    gpu = await Runtime.create({ provider: 'webgpu', strict: true });
  } catch (e) {
    const reason = (e as Error).message.split('\n')[0].replace(/^.*was false\.\s*/, '');
    unavailable = `no WebGPU adapter (${reason}); on Debian, scripts/install-vulkan.sh installs a software one`;
  }
});

// ---------------------------------------------------------------- a tiny transformer block

const B = 4,
  T = 8,
  D = 16,
  H = 2,
  V = 16;

/**
 * Pre-LN block (causal softmax attention, GELU MLP), final LayerNorm, a clipped LM head and masked
 * cross-entropy against int32 targets, trained with AdamW and gradient clipping. Fixed shapes, float
 * inputs: see the GPT-2-style tests below for token embeddings and symbolic sizes. The qkv
 * projection has no bias because the key bias gets an exactly-zero gradient (softmax ignores a
 * constant per query), which AdamW turns into ±lr steps of pure rounding noise that differ by
 * provider for reasons unrelated to the engine.
 */
function blockModel(): { graph: TrainGraph; init: { name: string; dims: number[]; data: Float32Array }[] } {
  const shapes: Record<string, number[]> = {
    ln1_g: [D],
    ln1_b: [D],
    qkv_w: [D, 3 * D],
    proj_w: [D, D],
    proj_b: [D],
    ln2_g: [D],
    ln2_b: [D],
    fc_w: [D, 4 * D],
    fc_b: [4 * D],
    fc2_w: [4 * D, D],
    fc2_b: [D],
    lnf_g: [D],
    lnf_b: [D],
    head: [D, V],
  };
  const p: Record<string, Tensor> = Object.fromEntries(
    Object.entries(shapes).map(([k, s]) => [k, input(k, 'float32', s)]),
  );
  const x0 = input('x', 'float32', [B, T, D]);
  const targets = input('targets', 'int32', [B, T]);
  const mask = input('mask', 'float32', [B, T]);

  const qkv = nn.linear(nn.layerNorm(x0, p.ln1_g, p.ln1_b), p.qkv_w);
  const heads = (t: Tensor) => t.reshape([B, T, H, D / H]).transpose([0, 2, 1, 3]);
  const q = heads(ops.slice(qkv, -1, 0, D)),
    k = heads(ops.slice(qkv, -1, D, 2 * D)),
    v = heads(ops.slice(qkv, -1, 2 * D));
  const causal = constant(
    Uint8Array.from({ length: T * T }, (_, i) => (i % T <= Math.floor(i / T) ? 1 : 0)),
    'bool',
    [T, T],
  );
  const scores = ops.where(causal, q.matmul(k.transpose([0, 1, 3, 2])).mul(1 / Math.sqrt(D / H)), -1e9);
  const att = ops.softmax(scores, -1).matmul(v).transpose([0, 2, 1, 3]).reshape([B, T, D]);
  const x1 = x0.add(nn.linear(att, p.proj_w, p.proj_b));
  const x2 = x1.add(
    nn.linear(nn.gelu(nn.linear(nn.layerNorm(x1, p.ln2_g, p.ln2_b), p.fc_w, p.fc_b)), p.fc2_w, p.fc2_b),
  );
  const logits = ops.clip(nn.layerNorm(x2, p.lnf_g, p.lnf_b).matmul(p.head), -30, 30);
  const loss = nn.crossEntropy(logits, targets, mask);
  const graph = buildTrainGraph({
    loss,
    params: Object.values(p),
    optimizer: adamw({ weightDecay: 0.1 }),
    maxGradNorm: 1,
  });

  const rng = new Rng(7);
  const init = Object.entries(shapes).map(([name, dims]) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const value = () => (name.endsWith('_g') ? 1 : name.endsWith('_b') ? 0 : 0.3 * rng.normal());
    return { name, dims, data: Float32Array.from({ length: n }, value) };
  });
  return { graph, init };
}

/** A few fixed batches; targets depend on the inputs so there is something to learn. */
function blockBatches(count: number): Record<string, ort.Tensor>[] {
  const rng = new Rng(11);
  return Array.from({ length: count }, () => {
    const x = Float32Array.from({ length: B * T * D }, () => rng.normal());
    const targets = Int32Array.from({ length: B * T }, (_, i) => Math.floor(Math.abs(x[i * D] * 5)) % V);
    const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T === 0 ? 0 : 1));
    return {
      x: hostTensor('float32', x, [B, T, D]),
      targets: hostTensor('int32', targets, [B, T]),
      mask: hostTensor('float32', mask, [B, T]),
    };
  });
}

interface Run {
  losses: number[];
  params: Map<string, Float32Array | Float64Array>;
  msPerStep: number;
  /** WebGPU only: problems with where state lived or how it was disposed, one line each. */
  stateProblems: string[];
}

async function train(runtime: Runtime): Promise<Run> {
  const { graph, init } = blockModel();
  const data = blockBatches(8);
  const state = new State(runtime);
  for (const p of init) state.setHost(p.name, p.data.slice(), p.dims);
  const step = await TrainStep.create(graph, state);
  const names = graph.state.map((s) => s.name);
  const losses: number[] = [];
  const stateProblems: string[] = [];
  const start = performance.now();
  try {
    for (let s = 1; s <= STEPS; s++) {
      const before = names.map((n) => state.get(n));
      losses.push((await step.run(data[s % data.length], 3e-3, s)).loss);
      if (!runtime.keepsStateOnDevice) continue;
      names.forEach((n, i) => {
        const now = state.get(n);
        if (now.location !== 'gpu-buffer')
          stateProblems.push(`step ${s}: "${n}" is on ${now.location}, not gpu-buffer`);
        if (now === before[i]) stateProblems.push(`step ${s}: "${n}" was not replaced`);
        // Step 1 replaces the host tensors from setHost, which are not disposed; later, device ones are.
        if (s > 1 && before[i].location !== 'none')
          stateProblems.push(`step ${s}: replaced "${n}" was not disposed (${before[i].location})`);
      });
    }
    const msPerStep = (performance.now() - start) / STEPS;
    return { losses, params: await state.read(names), msPerStep, stateProblems };
  } finally {
    await step.release();
    await state.release();
  }
}

let runs: Promise<{ cpu: Run; gpu: Run }> | undefined;
/** The CPU and WebGPU runs, done once for the tests that compare them. */
function bothRuns(): Promise<{ cpu: Run; gpu: Run }> {
  runs ??= (async () => {
    const cpuRuntime = await Runtime.create({ provider: 'cpu' });
    const cpu = await train(cpuRuntime);
    const gpuRun = await train(gpu!);
    console.log(
      `# ${STEPS} steps: cpu ${cpu.msPerStep.toFixed(1)} ms/step, webgpu ${gpuRun.msPerStep.toFixed(1)} ms/step`,
    );
    return { cpu, gpu: gpuRun };
  })();
  return runs;
}

function worstDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; index: number } {
  let diff = 0,
    index = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) {
      // NaN counts as worst
      diff = d;
      index = i;
    }
  }
  return { diff, index };
}

test('training on WebGPU with CPU fallback disabled gives the losses of the CPU run', async (t) => {
  if (!gpu) return t.skip(unavailable);
  const { cpu, gpu: g } = await bothRuns();
  assert.equal(g.losses.length, STEPS);
  const { diff, index } = worstDiff(cpu.losses, g.losses);
  t.diagnostic(
    `max |loss cpu - loss webgpu| = ${diff.toExponential(2)} (step ${index + 1}); loss ${cpu.losses[0].toFixed(3)} -> ${cpu.losses[STEPS - 1].toFixed(3)}`,
  );
  assert.ok(
    cpu.losses[STEPS - 1] < cpu.losses[0] / 2,
    `the model should learn: loss ${cpu.losses[0]} -> ${cpu.losses[STEPS - 1]}`,
  );
  assert.ok(
    diff <= LOSS_TOL,
    `step ${index + 1}: loss ${g.losses[index]} on WebGPU, ${cpu.losses[index]} on CPU (tolerance ${LOSS_TOL})`,
  );
});

test('training state stays on the device, replaced tensors are disposed, State.read matches CPU', async (t) => {
  if (!gpu) return t.skip(unavailable);
  const { cpu, gpu: g } = await bothRuns();
  assert.deepEqual(g.stateProblems.slice(0, 5), [], `${g.stateProblems.length} problem(s)`);
  assert.deepEqual([...g.params.keys()], [...cpu.params.keys()]);
  let worst = { name: '', diff: 0, index: -1 };
  for (const [name, want] of cpu.params) {
    const got = g.params.get(name)!;
    assert.equal(got.length, want.length, name);
    const { diff, index } = worstDiff(want, got);
    if (!(diff <= worst.diff)) worst = { name, diff, index };
  }
  t.diagnostic(
    `max |param cpu - param webgpu| = ${worst.diff.toExponential(2)} (${worst.name}[${worst.index}]), over params and AdamW slots`,
  );
  assert.ok(worst.diff <= PARAM_TOL, `${worst.name}[${worst.index}] differs by ${worst.diff} (tolerance ${PARAM_TOL})`);
});

// ---------------------------------------------------------------- device tensors and sessions

/** y = 2x + 1 with y kept on the device. */
async function deviceProgram(runtime: Runtime) {
  const x = input('x', 'float32', [2, 3]);
  return runtime.load(toOnnx({ y: x.mul(2).add(1) }, 'double'), ['y']);
}
const xs = () => ({ x: hostTensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]) });

test('a GPU tensor fed to a CPU session, or a disposed one, is refused with a clear error', async (t) => {
  if (!gpu) return t.skip(unavailable);
  const program = await deviceProgram(gpu);
  const cpuProgram = await (
    await Runtime.create({ provider: 'cpu' })
  ).load(toOnnx({ z: input('y', 'float32', [2, 3]).mul(3) }, 'triple'));
  try {
    const { y } = await program.run(xs());
    assert.equal(y.location, 'gpu-buffer');
    await assert.rejects(cpuProgram.run({ y }), /input "y" is a GPU tensor; a cpu session cannot read it/);
    y.dispose();
    await assert.rejects(program.run({ x: y }), /input "x" was disposed/);
  } finally {
    await program.release();
    await cpuProgram.release();
  }
});

test('releasing a program waits for its device outputs to be disposed', async (t) => {
  if (!gpu) return t.skip(unavailable);
  // Disposing a device tensor after the session that made it is released crashes the process, so
  // a State may outlive the program that produced its tensors only because release() waits.
  const state = new State(gpu);
  const program = await deviceProgram(gpu);
  state.set('y', (await program.run(xs())).y);
  await program.release();
  assert.equal(program.sessionOpen, true, 'released while its output is still held');
  await assert.rejects(program.run(xs()), /this program was released/);
  const other = await deviceProgram(gpu); // sessions created meanwhile do not matter
  assert.deepEqual([...(await state.read(['y'])).get('y')!], [3, 5, 7, 9, 11, 13]);
  await state.release();
  assert.equal(program.sessionOpen, false, 'not released once its last output was disposed');
  await other.release();
  assert.equal(other.sessionOpen, false);
});

// ---------------------------------------------------------------- GPT-2-style graphs

/**
 * A GPT-2-style step: token and position embeddings (Gather), symbolic batch and length, heads
 * split and merged with reshape/transpose, additive attention bias, tied LM head, masked
 * cross-entropy.
 */
/** Every graph of a training step. */
const stepModels = (g: TrainGraph) => [
  g.gradients,
  ...(g.accumulate ? [g.accumulate] : []),
  ...g.updates.map((u) => u.model),
];

function gptStep(): TrainGraph {
  const shapes: Record<string, number[]> = {
    wte: [V, D],
    wpe: [T, D],
    ln1_g: [D],
    ln1_b: [D],
    attn_w: [D, 3 * D],
    proj_w: [D, D],
    proj_b: [D],
    lnf_g: [D],
    lnf_b: [D],
  };
  const p: Record<string, Tensor> = Object.fromEntries(
    Object.entries(shapes).map(([k, s]) => [k, input(k, 'float32', s)]),
  );
  const tokens = input('tokens', 'int32', ['B', 'T']),
    positions = input('positions', 'int32', ['B', 'T']);
  const bias = input('attn_bias', 'float32', ['B', 1, 'T', 'T']),
    targets = input('targets', 'int32', ['B', 'T']),
    mask = input('mask', 'float32', ['B', 'T']);
  const x = ops.gather(p.wte, tokens).add(ops.gather(p.wpe, positions));
  const qkv = nn.linear(nn.layerNorm(x, p.ln1_g, p.ln1_b), p.attn_w); // no bias: see blockModel
  const heads = (t: Tensor) => ops.transpose(t.reshape([x.shape[0], x.shape[1], H, D / H]), [0, 2, 1, 3]);
  const q = heads(ops.slice(qkv, 2, 0, D)),
    k = heads(ops.slice(qkv, 2, D, 2 * D)),
    v = heads(ops.slice(qkv, 2, 2 * D, 3 * D));
  const scores = ops
    .matmul(q, ops.transpose(k, [0, 1, 3, 2]))
    .mul(1 / Math.sqrt(D / H))
    .add(bias);
  const merged = ops
    .transpose(ops.matmul(ops.softmax(scores, -1), v), [0, 2, 1, 3])
    .reshape([x.shape[0], x.shape[1], D]);
  const hidden = nn.layerNorm(x.add(nn.linear(merged, p.proj_w, p.proj_b)), p.lnf_g, p.lnf_b);
  const loss = nn.crossEntropy(ops.matmul(hidden, ops.transpose(p.wte, [1, 0])), targets, mask);
  return buildTrainGraph({ loss, params: Object.values(p), optimizer: adamw(), maxGradNorm: 1 });
}

test('GPT-2-style step (embeddings, symbolic sizes) on WebGPU with CPU fallback disabled matches CPU', async (t) => {
  if (!gpu) return t.skip(unavailable);
  // The embedding gradient (ScatterElements with reduction 'add', repeated token ids) and sizes read at run time.
  const graph = gptStep();
  const rng = new Rng(3);
  const b = 3,
    len = 5;
  const tokens = Int32Array.from({ length: b * len }, () => rng.int(4)); // few distinct ids: many repeats
  const positions = Int32Array.from({ length: b * len }, (_, i) => i % len);
  const bias = Float32Array.from({ length: b * len * len }, (_, i) => (i % len > Math.floor(i / len) % len ? -1e9 : 0));
  const batch = {
    tokens: hostTensor('int32', tokens, [b, len]),
    positions: hostTensor('int32', positions, [b, len]),
    attn_bias: hostTensor('float32', bias, [b, 1, len, len]),
    targets: hostTensor(
      'int32',
      Int32Array.from(tokens, (v) => (v * 3 + 1) % V),
      [b, len],
    ),
    mask: hostTensor('float32', new Float32Array(b * len).fill(1), [b, len]),
  };
  const names = graph.state.filter((s) => !s.name.includes('.')).map((s) => s.name); // parameters, not AdamW slots
  const results: { losses: number[]; params: Map<string, Float32Array | Float64Array> }[] = [];
  for (const runtime of [await Runtime.create({ provider: 'cpu' }), gpu]) {
    const state = new State(runtime);
    const init = new Rng(5);
    for (const s of graph.state.filter((x) => names.includes(x.name))) {
      state.setHost(
        s.name,
        Float32Array.from({ length: s.shape.reduce((a, c) => a * c, 1) }, () =>
          s.name.endsWith('_g') ? 1 : 0.3 * init.normal(),
        ),
        s.shape,
      );
    }
    const step = await TrainStep.create(graph, state);
    const losses: number[] = [];
    for (let s = 1; s <= 10; s++) losses.push((await step.run(batch, 1e-2, s)).loss);
    results.push({ losses, params: await state.read(names) });
    await step.release();
    await state.release();
  }
  const [cpu, g] = results;
  const loss = worstDiff(cpu.losses, g.losses);
  assert.ok(
    loss.diff <= LOSS_TOL,
    `step ${loss.index + 1}: loss ${g.losses[loss.index]} on WebGPU, ${cpu.losses[loss.index]} on CPU`,
  );
  for (const name of names) {
    const { diff, index } = worstDiff(cpu.params.get(name)!, g.params.get(name)!);
    assert.ok(diff <= PARAM_TOL, `${name}[${index}] differs by ${diff}`);
  }
});

for (const preset of ['tiny', 'tiny-llama']) {
  test(`the real SFT step and generation graphs of ${preset} load on WebGPU with CPU fallback disabled`, async (t) => {
    if (!gpu) return t.skip(unavailable);
    const cfg = resizeConfig(presetConfig(preset), { nLayer: 1, nEmbd: 32, nHead: 2, nPositions: 16 });
    // The loss over the whole batch at once, and with LoRA (a frozen head) in three chunks of tokens.
    const adapter = newAdapter(LORA, cfg, 'lm', 'test', new Rng(2), 'test');
    const sfts = [
      sftLossGraph(cfg),
      sftLossGraph(cfg, adapter, false, 3 * Math.floor(CHUNK_LOGITS_BYTES / (4 * cfg.vocabSize))),
    ];
    const models = [
      ...stepModels(gptStep()),
      ...sfts.flatMap((sft) => [
        ...stepModels(
          buildTrainGraph({
            loss: sft.loss,
            params: sft.params,
            optimizer: adamw(),
            maxGradNorm: 1,
            metrics: { mean_token_accuracy: sft.accuracy },
          }),
        ),
        toOnnx({ loss: sft.evaluation.loss, mean_token_accuracy: sft.evaluation.accuracy }),
      ]),
    ];
    for (const model of models) await (await gpu.load(model)).release();
    // Generation: each sampling mode's prefill and KV-cache decode graphs, loaded strictly on first use.
    const state = new State(gpu);
    for (const [name, shape] of paramShapes(cfg))
      state.setHost(name, new Float32Array(shape.reduce((x, y) => x * y, 1)), shape);
    const generator = await Generator.create(gpu, cfg, state, 0);
    for (const knobs of [
      { temperature: 0, topK: 0, topP: 1 },
      { temperature: 1, topK: 0, topP: 1 },
      { temperature: 1, topK: 5, topP: 0.9 },
    ])
      await generator.generate([[1, 2]], { ...knobs, maxNewTokens: 2 }, -1, new Rng(0));
    await generator.release();
    await state.release();
  });
}

test('the reward-model step, eval and scoring graphs load on WebGPU with CPU fallback disabled', async (t) => {
  if (!gpu) return t.skip(unavailable);
  const cfg = resizeConfig(presetConfig('tiny'), { nLayer: 1, nEmbd: 32, nHead: 2, nPositions: 16 });
  const rm = rewardLossGraph(cfg, 0.01);
  const models = [
    ...stepModels(buildTrainGraph({ ...rm, optimizer: adamw(), maxGradNorm: 1 })),
    toOnnx({ loss: rm.loss, ...rm.metrics }),
    toOnnx({ rewards: rewards(rewardParamInputs(cfg), cfg, rewardInputs()) }),
  ];
  for (const model of models) await (await gpu.load(model)).release();
});

test('strict mode names the nodes the provider cannot run', async (t) => {
  if (!gpu) return t.skip(unavailable);
  // int64 arithmetic: WGSL has no 64-bit integers, and WebGPU has no int64 Mul (the float one runs).
  const n = input('n', 'int64', [2]),
    x = input('x', 'float32', [2]);
  const model = toOnnx({ m: ops.mul(n, n), y: ops.mul(x, x) }, 'int64_mul');
  await assert.rejects(gpu.load(model), (e: Error) => {
    assert.match(
      e.message,
      /^strict: CPU fallback is disabled, but with webgpu onnxruntime places these nodes on CPU: Mul \(m\)$/,
    );
    return true;
  });
});

test('the fused linear cross-entropy and its gradients run on WebGPU as on CPU, with more chunks than tokens', async (t) => {
  if (!gpu) return t.skip(unavailable);
  const hidden = input('hidden', 'float32', ['B', 'T', D]),
    weight = input('weight', 'float32', [V, D]);
  const targets = input('targets', 'int32', ['B', 'T']),
    mask = input('mask', 'float32', ['B', 'T']);
  const { loss, accuracy } = fusedLinearCrossEntropy(hidden, weight, targets, mask, 5);
  const [dHidden, dWeight] = grad(loss, [hidden, weight], [accuracy]);
  const model = toOnnx({ loss, accuracy, dHidden, dWeight }, 'fused_linear_cross_entropy');
  const rng = new Rng(4);
  const feeds = {
    hidden: hostTensor(
      'float32',
      Float32Array.from({ length: 3 * D }, () => rng.normal()),
      [1, 3, D],
    ),
    weight: hostTensor(
      'float32',
      Float32Array.from({ length: V * D }, () => rng.normal()),
      [V, D],
    ),
    targets: hostTensor('int32', Int32Array.from([3, 0, 7]), [1, 3]),
    mask: hostTensor('float32', Float32Array.from([1, 0, 1]), [1, 3]),
  };
  await assertSameOnCpuAndGpu(gpu, model, feeds);
});

/** Every output of `model` on `feeds` the same on WebGPU as on CPU, within PARAM_TOL. */
async function assertSameOnCpuAndGpu(gpu: Runtime, model: OnnxModel, feeds: Record<string, ort.Tensor>) {
  const outputs = [];
  for (const runtime of [await Runtime.create({ provider: 'cpu' }), gpu]) {
    const program = await runtime.load(model);
    outputs.push(await program.run(feeds));
    await program.release();
  }
  for (const { name } of model.outputs) {
    const { diff, index } = worstDiff(outputs[0][name].data as Float32Array, outputs[1][name].data as Float32Array);
    assert.ok(diff <= PARAM_TOL, `${name}[${index}] differs by ${diff}`);
  }
}

test('the fused linear log-probs, their statistics and gradients run on WebGPU as on CPU, in more chunks than tokens', async (t) => {
  if (!gpu) return t.skip(unavailable);
  const hidden = input('hidden', 'float32', ['B', 'T', D]),
    weight = input('weight', 'float32', [V, D]),
    targets = input('targets', 'int32', ['B', 'T']);
  const options = { temperature: 0.7, chunks: 5, gradients: 'hidden and weight' as const, entropy: true };
  const { logprobs, entropy, meanLogit } = fusedLinearLogprobs(hidden, weight, targets, options);
  const [dHidden, dWeight] = grad(ops.sum(logprobs.mul(ops.cast(targets, 'float32'))), [hidden, weight]);
  const model = toOnnx({ logprobs, entropy: entropy!, meanLogit, dHidden, dWeight }, 'fused_linear_logprobs');
  const rng = new Rng(6);
  const random = (dims: number[]) =>
    hostTensor(
      'float32',
      Float32Array.from({ length: dims.reduce((a, b) => a * b) }, () => rng.normal()),
      dims,
    );
  const feeds = {
    hidden: random([1, 3, D]),
    weight: random([V, D]),
    targets: hostTensor('int32', Int32Array.from([3, 0, 7]), [1, 3]),
  };
  await assertSameOnCpuAndGpu(gpu, model, feeds);
});

test('the RL stages’ graphs with LoRA and the head in chunks load on WebGPU with CPU fallback disabled', async (t) => {
  if (!gpu) return t.skip(unavailable);
  const cfg = resizeConfig(presetConfig('tiny-llama'), { nLayer: 1, nEmbd: 32, nHead: 2, nPositions: 16 });
  const lora = { adapter: newAdapter(LORA, cfg, 'lm', 'test', new Rng(2), 'test') };
  const value = { adapter: newAdapter(LORA, cfg, 'score', 'test', new Rng(3), 'test') };
  const tokens = 3 * Math.floor(CHUNK_LOGITS_BYTES / (4 * cfg.vocabSize));
  const exp = parseExperiment(
    {
      model: 'tiny-llama',
      grpo: { prompts: 'p.jsonl', reward_funcs: ['r.ts'], beta: 0.04, num_iterations: 2 },
      ppo: { prompts: 'p.jsonl', reward_model: 'rm' },
    },
    'test',
  );
  const needs = groupInputs('grpo', exp.grpo!);
  const dpo = { beta: 0.1, loss_type: 'sigmoid' as const, label_smoothing: 0 };
  const steps = [
    groupUpdateGraph(cfg, 'grpo', exp.grpo!, needs, lora, tokens),
    ppoUpdateGraph(cfg, exp.ppo!, { policy: lora, value }, tokens),
    dpoLossGraph(cfg, dpo, lora, tokens),
  ];
  const models = [
    ...steps.flatMap((g) => stepModels(buildTrainGraph({ ...g, optimizer: adamw(), maxGradNorm: 1 }))),
    groupRolloutGraph(cfg, 1, needs, { policy: lora, ref: { adapter: lora.adapter } }, tokens)!,
    ppoRolloutGraph(cfg, 1, { policy: lora, value }, tokens),
    toOnnx(referenceLogpsGraph(cfg, false, 'ref.', undefined, tokens)),
  ];
  for (const model of models) await (await gpu.load(model)).release();
});

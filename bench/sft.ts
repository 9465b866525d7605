/**
 * SFT and KV-cache decoding, our engine against PyTorch (bench/reference/bench_torch.py), on the
 * same model: with --arch gpt2 (the default) GPT-2's layout, 4 layers, d=256, 4 heads, context 128,
 * vocab 50257; with --arch llama SmolLM2-135M's shape (d=576, 9 query and 3 KV heads, MLP 1536,
 * vocab 49152, tied head) with 4 of its 30 layers. --d, --heads and --vocab (0: the arch's) resize it.
 *
 * --preset gpt2-124m (GPT-2: 12 layers, d=768, 12 heads) or smollm2-135m (all 30 layers of SmolLM2-135M)
 * sets the shape at batch 4, context 128; --gradient-checkpointing recomputes layers in the backward.
 *
 *   npm run bench:sft -- [--preset gpt2-124m|smollm2-135m --gradient-checkpointing
 *                         --arch gpt2|llama --layers 4 --d 256 --heads 4 --ctx 128 --vocab 50257 --batch 8
 *                         --decode-batch 16 --prompt 16 --new-tokens 64 --warmup 2 --steps 5
 *                         --decode-steps 3 --rounds 3 --threads N --only train,decode,peak
 *                         --no-torch --python PATH --max-load 0 --wait 600 --profile --ort JSON
 *                         --lora --lora-rank 16]
 *
 * - train: one SFT step as training runs it (loss, token accuracy, gradient clipping, AdamW; the
 *   graph of sftLossGraph + buildTrainGraph) on full-length rows of random tokens; tokens/s, and
 *   GFLOP/s with bench_torch.py's formula. PyTorch's step is loss, backward and AdamW only.
 * - decode: greedy generation with the KV cache (whole generations timed: prefill, then one
 *   decode run per further token); tokens/s counts new tokens.
 * - peak: the best GFLOP/s of one n×n×n MatMul (ours: an ORT MatMul graph; PyTorch: torch.mm).
 * - memory: the peak RSS of this process after the training steps (process.resourceUsage().maxRSS),
 *   before anything else runs; PyTorch's from getrusage at the end of its gpt2-sft case.
 * - session creation: building the training graph (forward, autodiff, AdamW, ONNX emission), and
 *   onnxruntime's InferenceSession.create for it; Generator.create for the generation graphs.
 *
 * Ours runs as a training process does: on glibc Linux the bench restarts itself with the malloc
 * settings of src/util/training-malloc.ts (and so onnxruntime's CPU arena off, the update apart from
 * the backward); PyTorch runs without them, as its users run it.
 *
 * Rounds alternate our runs with PyTorch's (a child process per case), so both sides see similar
 * load on a shared machine; --max-load waits for the 1-minute load average to fall below it first.
 * --profile prints where the time of our training step and decode step goes, by op type;
 * --ort adds session options (JSON, e.g. '{"extra":{"session":{"intra_op.allow_spinning":"0"}}}').
 *
 * --provider runs ours on another execution provider (cuda, webgpu), --device PyTorch on another
 * device (cuda): bench/gpu.ts runs this bench so on a GPU.
 *
 * --lora compares full fine-tuning with LoRA adapters of rank --lora-rank (16) on every projection,
 * on the same model, each training in a process of its own: step time, peak RSS, and the floats
 * that have a gradient and AdamW's two moments (what the adapters save). --lora-rank alone trains
 * with LoRA of that rank (0: the whole model).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { toOnnx } from '../src/engine/onnx';
import { matmul, slice } from '../src/engine/ops';
import { Provider, Runtime, hostTensor } from '../src/engine/runtime';
import { State } from '../src/engine/state';
import { TrainStep } from '../src/engine/step';
import { buildTrainGraph } from '../src/engine/train-graph';
import { adamw } from '../src/engine/optim';
import { input } from '../src/engine/tensor';
import { ConfigSize, ModelConfig, PRESETS, resizeConfig } from '../src/model/config';
import { initParams } from '../src/model/decoder';
import { newAdapter } from '../src/model/lora';
import { makeBatch } from '../src/data/batch';
import { GREEDY, Generator } from '../src/train/generate';
import { batchFeeds, sftLossGraph } from '../src/train/sft';
import { Rng } from '../src/util/rng';
import {
  benchLora,
  findPython,
  fullAndLora,
  load1,
  matmulParams,
  median,
  ortVersion,
  overrideSessionOptions,
  parseFlags,
  printProfile,
  timeIt,
  torchCase,
  waitForLoad,
} from './common';
import { restartWithTrainingMalloc, trainingMallocActive } from '../src/util/training-malloc';

const DEFAULTS = {
  preset: '',
  arch: 'gpt2',
  layers: 4,
  d: 0,
  heads: 0,
  ctx: 128,
  vocab: 0,
  batch: 8,
  'decode-batch': 16,
  prompt: 16,
  'new-tokens': 64,
  warmup: 2,
  steps: 5,
  'decode-steps': 3,
  rounds: 3,
  threads: os.availableParallelism(),
  seed: 0,
  'max-load': 0,
  wait: 600,
  only: 'train,decode,peak',
  'no-torch': false,
  python: '',
  profile: false,
  ort: '',
  lora: false,
  'lora-rank': 0,
  provider: 'cpu',
  device: 'cpu',
  'gradient-checkpointing': false,
};
const USAGE = `flags: ${Object.keys(DEFAULTS)
  .map((k) => `--${k}`)
  .join(' ')}`;
type Flags = typeof DEFAULTS;
type Json = Record<string, unknown>;

/** Each arch's model and its PyTorch cases; its goals (times PyTorch's speed) for training and decoding. */
const ARCHS = {
  gpt2: {
    base: resizeConfig(PRESETS.tiny, { nEmbd: 256, nHead: 4 }),
    sft: 'gpt2-sft',
    decode: 'decode',
    goals: { train: 1.25, decode: 2 },
  },
  llama: { base: PRESETS['smollm2-135m'], sft: 'llama-sft', decode: 'llama-decode', goals: { train: 1.5, decode: 2 } },
};

/** Real model sizes: the shape flags each sets (flags given beside it still win). */
const SIZES: Record<string, Partial<Flags>> = {
  'gpt2-124m': { arch: 'gpt2', layers: 12, d: 768, heads: 12, vocab: 50257, batch: 4, ctx: 128 },
  'smollm2-135m': { arch: 'llama', layers: 30, d: 576, heads: 9, vocab: 49152, batch: 4, ctx: 128 },
};

/** The flags with --preset's shape filled in where the command line does not set them. */
function withPreset(f: Flags, argv: string[]): Flags {
  if (!f.preset) return f;
  const size = SIZES[f.preset];
  if (!size) throw new Error(`--preset must be one of ${Object.keys(SIZES).join(', ')}, got "${f.preset}"`);
  const given = Object.entries(size).filter(([k]) => !argv.includes(`--${k}`));
  return { ...f, ...Object.fromEntries(given) };
}

function benchConfig(f: Flags): ModelConfig {
  const arch = ARCHS[f.arch as keyof typeof ARCHS];
  if (!arch) throw new Error(`--arch must be one of ${Object.keys(ARCHS).join(', ')}, got "${f.arch}"`);
  const given = (v: number) => (v > 0 ? v : undefined);
  const size: ConfigSize = { nLayer: f.layers, nPositions: f.ctx, nEmbd: given(f.d), nHead: given(f.heads) };
  return resizeConfig(arch.base, { ...size, vocabSize: given(f.vocab) });
}

/** The model flags of bench_torch.py for `cfg`. */
function torchModelFlags(cfg: ModelConfig): (string | number)[] {
  const llama =
    cfg.modelType === 'llama'
      ? ['--kv-heads', cfg.nKvHead, '--intermediate', cfg.intermediateSize!, '--rope-theta', cfg.ropeTheta!]
      : [];
  return [
    '--d',
    cfg.nEmbd,
    '--heads',
    cfg.nHead,
    '--layers',
    cfg.nLayer,
    '--vocab',
    cfg.vocabSize,
    '--ctx',
    cfg.nPositions,
    ...llama,
  ];
}

/** A runtime on --provider; with --ort or --profile, its sessions get those options. */
async function runtimeFor(f: Flags, what: string) {
  const runtime = await Runtime.create({ provider: f.provider as Provider, threads: f.threads });
  const profileDir = f.profile ? fs.mkdtempSync(path.join(os.tmpdir(), `bench-${what}-profile-`)) : undefined;
  const extra: ort.InferenceSession.SessionOptions = f.ort ? JSON.parse(f.ort) : {};
  if (profileDir) Object.assign(extra, { enableProfiling: true, profileFilePrefix: path.join(profileDir, what) });
  const sessions = f.ort || profileDir ? overrideSessionOptions(runtime, extra) : [];
  const endProfiling = (title: string) => {
    if (!profileDir) return;
    sessions.forEach((s) => s.endProfiling());
    printProfile(profileDir, title);
  };
  return { runtime, endProfiling };
}

/** A State holding a freshly initialised model. */
function modelState(runtime: Runtime, cfg: ModelConfig, seed: number): State {
  const state = new State(runtime);
  for (const [name, t] of initParams(cfg, new Rng(seed))) state.setHost(name, t.data as Float32Array, t.shape);
  return state;
}

/** Runs `ours` and `theirs` (PyTorch) alternately for --rounds rounds; our times in ms, PyTorch's JSON lines. */
async function rounds(f: Flags, what: string, ours: (round: number) => Promise<number[]>, theirs?: () => Json) {
  const mine: number[] = [],
    ref: Json[] = [],
    loads: number[] = [];
  for (let r = 0; r < f.rounds; r++) {
    loads.push(await waitForLoad(f['max-load'], f.wait, `${what} round ${r + 1}`));
    const times = await ours(r);
    mine.push(...times);
    if (theirs) ref.push(theirs());
    console.error(
      `[${what} round ${r + 1}] ours ${median(times).toFixed(1)} ms${theirs ? `, PyTorch ${ref[r].ms_per_step} ms` : ''} (load ${load1().toFixed(2)})`,
    );
  }
  return { mine, ref, loads };
}

async function train(f: Flags, cfg: ModelConfig, torch?: (extra: (string | number)[]) => Json) {
  const { runtime, endProfiling } = await runtimeFor(f, 'train');
  const state = modelState(runtime, cfg, f.seed);
  const rank = f['lora-rank'];
  const adapter = rank > 0 ? newAdapter(benchLora(rank), cfg, 'lm', 'bench', new Rng(f.seed), 'bench') : undefined;
  for (const [name, t] of adapter?.weights ?? []) state.setHost(name, t.data as Float32Array, t.shape);
  const t0 = performance.now();
  const g = sftLossGraph(cfg, adapter, f['gradient-checkpointing'], f.batch * f.ctx);
  const trainedFloats = g.params.reduce((n, p) => n + (p.shape as number[]).reduce((a, b) => a * b, 1), 0);
  const graph = buildTrainGraph({
    loss: g.loss,
    params: g.params,
    optimizer: adamw({ weightDecay: 0.1 }),
    maxGradNorm: 1,
    metrics: { mean_token_accuracy: g.accuracy },
    updateApart: runtime.updatesApart,
  });
  const t1 = performance.now();
  const step = await TrainStep.create(graph, state);
  const t2 = performance.now();

  // Full-length rows of random tokens, every position trained on (as PyTorch's case).
  const rng = new Rng(f.seed + 1);
  const examples = Array.from({ length: f.batch }, () => ({
    ids: Array.from({ length: f.ctx + 1 }, () => rng.int(cfg.vocabSize)),
    lossMask: new Array(f.ctx + 1).fill(1),
  }));
  const batch = makeBatch(examples, f.ctx, 0);
  let at = 0;
  const losses: number[] = [];
  const run = async () => losses.push((await step.run(batchFeeds(batch), 1e-4, ++at)).loss);
  const res = await rounds(
    f,
    'train',
    (r) => timeIt(run, r === 0 ? f.warmup : 1, f.steps),
    torch && (() => torch(['--batch', f.batch, '--warmup', f.warmup, '--steps', f.steps])),
  );
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  endProfiling('SFT training step');
  await step.release();
  await state.release();
  const losses4 = losses.slice(0, 4);
  return {
    ...res,
    ms: median(res.mine),
    buildMs: t1 - t0,
    createMs: t2 - t1,
    maxRssMb,
    trainedFloats,
    losses: losses4,
  };
}

async function decode(f: Flags, cfg: ModelConfig, torch?: (extra: (string | number)[]) => Json) {
  const { runtime, endProfiling } = await runtimeFor(f, 'decode');
  const state = modelState(runtime, cfg, f.seed);
  const t0 = performance.now();
  const generator = await Generator.create(runtime, cfg, state, 0);
  await generator.generate([[0]], { ...GREEDY, maxNewTokens: 1 }, -1, new Rng(0)); // loads the greedy programs
  const createMs = performance.now() - t0;
  const rng = new Rng(f.seed + 2);
  const prompts = Array.from({ length: f['decode-batch'] }, () =>
    Array.from({ length: f.prompt }, () => rng.int(cfg.vocabSize)),
  );
  const opts = { ...GREEDY, maxNewTokens: f['new-tokens'] };
  let generated = 0;
  const run = async () => {
    const out = await generator.generate(prompts, opts, -1, rng); // no EOS: every row runs to the end
    generated = out.reduce((a, g) => a + g.tokens.length, 0);
  };
  const res = await rounds(
    f,
    'decode',
    (r) => timeIt(run, r === 0 ? 1 : 0, f['decode-steps']),
    torch &&
      (() =>
        torch([
          '--batch',
          f['decode-batch'],
          '--prompt',
          f.prompt,
          '--new-tokens',
          f['new-tokens'],
          '--steps',
          f['decode-steps'],
        ])),
  );
  endProfiling('decode step');
  await generator.release();
  await state.release();
  return { ...res, ms: median(res.mine), generated, createMs };
}

/** Best GFLOP/s of one n×n×n MatMul graph (best single run), over the sizes of PyTorch's matmul-peak case. */
async function matmulPeak(f: Flags) {
  const runtime = await Runtime.create({ provider: f.provider as Provider, threads: f.threads });
  const bySize: Record<number, number> = {};
  for (const n of [1024, 2048, 4096]) {
    // Only the first row comes out: the product is computed in full, but not copied out each run.
    const product = matmul(input('a', 'float32', [n, n]), input('b', 'float32', [n, n]));
    const program = await runtime.load(toOnnx({ row: slice(product, 0, 0, 1) }, 'matmul'));
    const rng = new Rng(n);
    const a = hostTensor(
      'float32',
      Float32Array.from({ length: n * n }, () => rng.normal()),
      [n, n],
    );
    const b = hostTensor(
      'float32',
      Float32Array.from({ length: n * n }, () => rng.normal()),
      [n, n],
    );
    const times = await timeIt(() => program.run({ a, b }), 2, 5);
    bySize[n] = (2 * n ** 3) / (Math.min(...times) / 1000) / 1e9;
    await program.release();
  }
  return { gflops: Math.max(...Object.values(bySize)), bySize };
}

interface Row {
  what: string;
  unit: string;
  ours?: number;
  torch?: number;
  lowerIsBetter?: boolean;
  goal?: number;
}

function printTable(rows: Row[], haveTorch: boolean) {
  const num = (x?: number) => (x === undefined ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  console.log(
    `\n${'measure'.padEnd(36)}${'ours'.padStart(9)}${(haveTorch ? 'PyTorch' : '').padStart(9)}${(haveTorch ? 'ratio' : '').padStart(8)}   goal`,
  );
  for (const r of rows) {
    const ratio =
      r.ours !== undefined && r.torch !== undefined
        ? r.lowerIsBetter
          ? r.torch / r.ours
          : r.ours / r.torch
        : undefined;
    const goal =
      r.goal !== undefined && ratio !== undefined ? `≥ ${r.goal}×: ${ratio >= r.goal ? 'met' : 'not met'}` : '';
    console.log(
      `${`${r.what} (${r.unit})`.padEnd(36)}${num(r.ours).padStart(9)}${(haveTorch ? num(r.torch) : '').padStart(9)}${(ratio === undefined ? '' : `${ratio.toFixed(2)}×`).padStart(8)}   ${goal}`,
    );
  }
  if (haveTorch) console.log('ratio: how many times faster (or smaller) ours is than PyTorch');
}

/** Full fine-tuning against LoRA of rank --lora-rank (16 unless given), each training in its own process. */
function compareLora(argv: string[], f: Flags): void {
  const rank = f['lora-rank'] || 16;
  const args = argv.filter((a, i) => a !== '--lora' && a !== '--lora-rank' && argv[i - 1] !== '--lora-rank');
  const { full, lora } = fullAndLora(__filename, [...args, '--only', 'train', '--no-torch'], rank, '{"bench":"sft"');
  const t = (r: Json) => r.train as Json;
  const floats = (r: Json) => Number(t(r).trainedFloats);
  // A gradient and AdamW's exp_avg and exp_avg_sq per trained float, float32.
  const optimizerMb = (r: Json) => (3 * 4 * floats(r)) / 2 ** 20;
  const rows: [string, (r: Json) => number, string][] = [
    ['SFT step', (r) => Number(t(r).ms), 'ms'],
    ['peak RSS while training', (r) => Number(t(r).maxRssMb), 'MB'],
    ['trained floats', floats, ''],
    ['gradient + AdamW moments', optimizerMb, 'MB'],
  ];
  console.log(`\nfull fine-tuning vs LoRA r=${rank} (all-linear), ${JSON.stringify(full.config)}`);
  console.log(`${'what'.padEnd(28)}${'full'.padStart(14)}${'LoRA'.padStart(14)}   LoRA/full`);
  for (const [what, get, unit] of rows) {
    const a = get(full),
      b = get(lora);
    const fmt = (x: number) => `${x >= 100 ? x.toFixed(0) : x.toFixed(2)} ${unit}`.padStart(14);
    console.log(`${what.padEnd(28)}${fmt(a)}${fmt(b)}   ${((100 * b) / a).toFixed(1)} %`);
  }
  const goal = optimizerMb(lora) / optimizerMb(full) < 0.1;
  console.log(`goal: LoRA's gradient + optimizer memory < 10 % of full fine-tuning's: ${goal ? 'met' : 'not met'}`);
}

async function main() {
  const argv = process.argv.slice(2);
  const f = withPreset(parseFlags(argv, DEFAULTS, USAGE), argv);
  if (f.lora) return compareLora(argv, f);
  const only = new Set(f.only.split(','));
  const cfg = benchConfig(f),
    arch = ARCHS[f.arch as keyof typeof ARCHS];
  const config = {
    arch: f.arch,
    layers: cfg.nLayer,
    d: cfg.nEmbd,
    heads: cfg.nHead,
    kv_heads: cfg.nKvHead,
    ctx: f.ctx,
    vocab: cfg.vocabSize,
    batch: f.batch,
    decode_batch: f['decode-batch'],
    prompt: f.prompt,
    new_tokens: f['new-tokens'],
    threads: f.threads,
    gradient_checkpointing: f['gradient-checkpointing'],
  };
  console.error(
    `SFT/decode bench, onnxruntime-node ${ortVersion}: ${JSON.stringify(config)}${f.ort ? `, session options ${f.ort}` : ''}`,
  );
  console.error(
    trainingMallocActive()
      ? `ours: glibc malloc keeps freed memory (${process.env.GLIBC_TUNABLES}), onnxruntime's CPU arena off; PyTorch: default malloc`
      : "ours and PyTorch: this platform's default malloc, onnxruntime's CPU arena on",
  );
  const py = f['no-torch'] ? '' : findPython(f.python);
  if (!py)
    console.error(
      f['no-torch']
        ? 'PyTorch reference skipped (--no-torch)'
        : 'PyTorch reference skipped: no python3 with torch found',
    );
  const model = ['--threads', f.threads, '--seed', f.seed, '--device', f.device, ...torchModelFlags(cfg)];
  const torch = (bench: string) =>
    py ? (extra: (string | number)[]) => torchCase(py, bench, [...model, ...extra]) : undefined;

  const t = only.has('train') ? await train(f, cfg, torch(arch.sft)) : undefined;
  const d = only.has('decode') ? await decode(f, cfg, torch(arch.decode)) : undefined;
  const pk = only.has('peak') ? await matmulPeak(f) : undefined;
  const pkTorch = pk && py ? torchCase(py, 'matmul-peak', ['--threads', f.threads]) : undefined;
  console.log(
    JSON.stringify({
      bench: 'sft',
      engine: `onnxruntime-node ${ortVersion}`,
      config,
      train: t,
      decode: d,
      peak: pk,
      torch_peak: pkTorch,
    }),
  );

  // PyTorch's figures: the median over rounds of each round's median.
  const ref = (x: { ref: Json[] } | undefined, key: string) =>
    x?.ref.length ? median(x.ref.map((j) => Number(j[key]))) : undefined;
  const tokens = f.batch * f.ctx;
  const flops = tokens * (6 * matmulParams(cfg) + 12 * cfg.nLayer * f.ctx * cfg.nHead * cfg.headDim);
  const rows: Row[] = [];
  if (t) {
    rows.push({
      what: 'SFT training',
      unit: 'tokens/s',
      ours: tokens / (t.ms / 1000),
      torch: ref(t, 'tokens_per_s'),
      goal: arch.goals.train,
    });
    rows.push({ what: 'SFT step', unit: 'ms', ours: t.ms, torch: ref(t, 'ms_per_step'), lowerIsBetter: true });
    rows.push({ what: 'SFT matmul FLOPs', unit: 'GFLOP/s', ours: flops / t.ms / 1e6, torch: ref(t, 'gflops') });
  }
  if (pk)
    rows.push({
      what: 'MatMul peak',
      unit: 'GFLOP/s',
      ours: pk.gflops,
      torch: pkTorch ? Number(pkTorch.gflops) : undefined,
    });
  if (t && pk) {
    const tg = ref(t, 'gflops');
    rows.push({
      what: 'SFT share of own MatMul peak',
      unit: '%',
      ours: (100 * flops) / t.ms / 1e6 / pk.gflops,
      torch: tg && pkTorch ? (100 * tg) / Number(pkTorch.gflops) : undefined,
    });
  }
  if (d) {
    rows.push({
      what: 'KV-cache decode',
      unit: 'tokens/s',
      ours: d.generated / (d.ms / 1000),
      torch: ref(d, 'tokens_per_s'),
      goal: arch.goals.decode,
    });
    rows.push({
      what: 'decode, per token step',
      unit: 'ms',
      ours: d.ms / f['new-tokens'],
      torch: ref(d, 'ms_per_token_step'),
      lowerIsBetter: true,
    });
  }
  if (t) {
    rows.push({
      what: 'peak RSS while training',
      unit: 'MB',
      ours: t.maxRssMb,
      torch: ref(t, 'max_rss_mb'),
      lowerIsBetter: true,
    });
    rows.push({ what: 'train graph: build + emit', unit: 'ms', ours: t.buildMs });
    rows.push({ what: 'train graph: InferenceSession', unit: 'ms', ours: t.createMs });
  }
  if (d) rows.push({ what: 'Generator: greedy sessions', unit: 'ms', ours: d.createMs });
  printTable(rows, Boolean(py));
  if (t)
    console.log(
      `SFT: first losses ${t.losses.map((x) => x.toFixed(3)).join(' ')} (ln V = ${Math.log(cfg.vocabSize).toFixed(3)})`,
    );
  const loads = [
    t && `train ${t.loads.map((l) => l.toFixed(2)).join('/')}`,
    d && `decode ${d.loads.map((l) => l.toFixed(2)).join('/')}`,
  ].filter(Boolean);
  console.log(
    `medians over ${f.rounds} rounds; 1-minute load at the start of each round: ${loads.join(', ')}; now ${load1().toFixed(2)}`,
  );
}

if (!restartWithTrainingMalloc())
  main().catch((e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  });

/**
 * Training steps of the engine against PyTorch (bench/reference/bench_torch.py), same configs:
 *
 * - mlp:   batch 256, 512 → 2048 → 512 with GELU (tanh), cross-entropy over 512 classes, AdamW;
 * - block: one GPT-2 transformer block (pre-LayerNorm, causal attention, GELU MLP), batch 8,
 *          T 128, d 256, 4 heads, loss mean(y²), AdamW.
 *
 *   npm run bench -- [--cases mlp,block --warmup 3 --steps 10 --rounds 3 --threads N
 *                     --no-torch --python PATH --max-load 0 --wait 600 --profile --ort JSON]
 *
 * Ours is one graph per step (forward, backward, AdamW; buildTrainGraph + TrainStep, as training
 * runs), fed the same batch every step; ms/step is the median of the timed steps. GFLOP/s counts
 * matmul FLOPs as bench_torch.py does (forward × 3). AdamW decays every parameter, as PyTorch's does.
 * Each round times our steps, then PyTorch's case in a child process; with the machine shared,
 * alternating rounds keep both sides under similar load, and --max-load waits for a quiet one.
 * --profile prints where our step's time goes by op type; --ort adds session options (JSON).
 */
import * as os from 'os';
import * as path from 'path';
import * as fs from 'fs';
import * as ort from 'onnxruntime-node';
import { crossEntropy, gelu, linear } from '../src/engine/nn';
import { mean } from '../src/engine/ops';
import { adamw } from '../src/engine/optim';
import { Runtime, hostTensor } from '../src/engine/runtime';
import { State } from '../src/engine/state';
import { TrainStep } from '../src/engine/step';
import { buildTrainGraph } from '../src/engine/train-graph';
import { Tensor, input } from '../src/engine/tensor';
import { PRESETS, resizeConfig } from '../src/model/config';
import { initParams, paramInputs } from '../src/model/decoder';
import { block } from '../src/model/gpt2';
import { attentionBias } from '../src/model/masks';
import { Rng } from '../src/util/rng';
import {
  findPython,
  load1,
  median,
  ortVersion,
  overrideSessionOptions,
  parseFlags,
  printProfile,
  timeIt,
  torchCase,
  waitForLoad,
} from './common';
import { restartWithTrainingMalloc } from '../src/util/training-malloc';

const DEFAULTS = {
  cases: 'mlp,block',
  warmup: 3,
  steps: 10,
  rounds: 3,
  threads: os.availableParallelism(),
  seed: 0,
  'max-load': 0,
  wait: 600,
  'no-torch': false,
  python: '',
  profile: false,
  ort: '',
};
const USAGE = `flags: ${Object.keys(DEFAULTS)
  .map((k) => `--${k}`)
  .join(' ')}`;
type Flags = typeof DEFAULTS;

interface Case {
  /** bench_torch.py's flags for the same config. */
  torchArgs: (string | number)[];
  flops: number;
  /** The loss graph, its parameters (graph inputs with initial values) and one batch. */
  build(rng: Rng): { loss: Tensor; params: [Tensor, Float32Array][]; batch: Record<string, ort.Tensor> };
}

const normal = (rng: Rng, n: number, std: number) => Float32Array.from({ length: n }, () => std * rng.normal());

const CASES: Record<string, Case> = {
  mlp: (() => {
    const [b, nIn, hidden, nOut] = [256, 512, 2048, 512];
    return {
      torchArgs: ['--batch', b, '--n-in', nIn, '--hidden', hidden, '--n-out', nOut],
      flops: 3 * 2 * b * (nIn * hidden + hidden * nOut),
      build(rng) {
        const shapes: Record<string, number[]> = { w1: [nIn, hidden], b1: [hidden], w2: [hidden, nOut], b2: [nOut] };
        const p = Object.fromEntries(Object.entries(shapes).map(([n, s]) => [n, input(n, 'float32', s)]));
        const x = input('x', 'float32', [b, nIn]),
          y = input('y', 'int32', [b]);
        const loss = crossEntropy(linear(gelu(linear(x, p.w1, p.b1)), p.w2, p.b2), y);
        const params = Object.entries(shapes).map(([n, s]): [Tensor, Float32Array] => [
          p[n],
          normal(
            rng,
            s.reduce((u, v) => u * v),
            n.startsWith('w') ? 0.02 : 0,
          ),
        ]);
        const batch = {
          x: hostTensor('float32', normal(rng, b * nIn, 1), [b, nIn]),
          y: hostTensor(
            'int32',
            Int32Array.from({ length: b }, () => rng.int(nOut)),
            [b],
          ),
        };
        return { loss, params, batch };
      },
    };
  })(),
  block: (() => {
    const [b, t, d, heads] = [8, 128, 256, 4];
    const cfg = resizeConfig(PRESETS.tiny, { nLayer: 1, nEmbd: d, nHead: heads, nPositions: t });
    return {
      torchArgs: ['--batch', b, '--ctx', t, '--d', d, '--heads', heads],
      flops: 3 * b * t * (24 * d ** 2 + 4 * t * d),
      build(rng) {
        const all = paramInputs(cfg);
        const p = Object.fromEntries(Object.entries(all).filter(([n]) => n.startsWith('h.0.')));
        const x = input('x', 'float32', [b, t, d]),
          bias = input('attn_bias', 'float32', [b, 1, t, t]);
        const y = block(x, p, 0, cfg, bias).x;
        const init = initParams(cfg, rng);
        const initial = (n: string) => init.get(n)!.data as Float32Array;
        const params = Object.entries(p).map(([n, t]): [Tensor, Float32Array] => [t, initial(n)]);
        const batch = {
          x: hostTensor('float32', normal(rng, b * t * d, 1), [b, t, d]),
          attn_bias: hostTensor('float32', attentionBias(new Float32Array(b * t).fill(1), b, t, t), [b, 1, t, t]),
        };
        return { loss: mean(y.mul(y)), params, batch };
      },
    };
  })(),
};

async function ourStep(f: Flags, c: Case, profileDir?: string) {
  const runtime = await Runtime.create({ provider: 'cpu', threads: f.threads });
  const extra: ort.InferenceSession.SessionOptions = f.ort ? JSON.parse(f.ort) : {};
  if (profileDir) Object.assign(extra, { enableProfiling: true, profileFilePrefix: path.join(profileDir, 'step') });
  const sessions = f.ort || profileDir ? overrideSessionOptions(runtime, extra) : [];
  const { loss, params, batch } = c.build(new Rng(f.seed));
  const state = new State(runtime);
  for (const [t, data] of params) state.setHost(t.name!, data, t.shape as number[]);
  const graph = buildTrainGraph({
    loss,
    params: params.map(([t]) => t),
    optimizer: adamw({ decays: () => true }),
    updateApart: runtime.updatesApart,
  });
  const step = await TrainStep.create(graph, state);
  let at = 0;
  return {
    run: () => step.run(batch, 1e-3, ++at),
    async release() {
      sessions.forEach((s) => s.endProfiling());
      await step.release();
      await state.release();
    },
  };
}

async function main() {
  const f = parseFlags(process.argv.slice(2), DEFAULTS, USAGE);
  const names = f.cases.split(',');
  for (const n of names) if (!CASES[n]) throw new Error(`unknown case ${n} (known: ${Object.keys(CASES).join(', ')})`);
  const py = f['no-torch'] ? '' : findPython(f.python);
  console.error(
    `engine bench, onnxruntime-node ${ortVersion}, ${f.threads} threads${f.ort ? `, session options ${f.ort}` : ''}`,
  );
  if (!py)
    console.error(
      f['no-torch']
        ? 'PyTorch reference skipped (--no-torch)'
        : 'PyTorch reference skipped: no python3 with torch found',
    );

  const rows: { name: string; ours: number; torch?: number; flops: number; loads: number[] }[] = [];
  for (const name of names) {
    const c = CASES[name];
    const profileDir = f.profile ? fs.mkdtempSync(path.join(os.tmpdir(), `bench-${name}-profile-`)) : undefined;
    const step = await ourStep(f, c, profileDir);
    const ours: number[] = [],
      theirs: number[] = [],
      loads: number[] = [];
    for (let r = 0; r < f.rounds; r++) {
      loads.push(await waitForLoad(f['max-load'], f.wait, `${name} round ${r + 1}`));
      ours.push(...(await timeIt(step.run, r === 0 ? f.warmup : 1, f.steps)));
      if (py) {
        const t = torchCase(py, name, [
          ...c.torchArgs,
          '--threads',
          f.threads,
          '--warmup',
          f.warmup,
          '--steps',
          f.steps,
        ]);
        theirs.push(Number(t.ms_per_step));
      }
      console.error(
        `[${name} round ${r + 1}] ours ${median(ours.slice(-f.steps)).toFixed(2)} ms${py ? `, PyTorch ${theirs[r].toFixed(2)} ms` : ''} (load ${load1().toFixed(2)})`,
      );
    }
    await step.release();
    if (profileDir) printProfile(profileDir, `${name} training step`);
    rows.push({ name, ours: median(ours), torch: py ? median(theirs) : undefined, flops: c.flops, loads });
    console.log(
      JSON.stringify({
        bench: name,
        engine: `onnxruntime-node ${ortVersion}`,
        ms_per_step: median(ours),
        gflops: c.flops / median(ours) / 1e6,
        torch_ms_per_step: py ? median(theirs) : null,
        ours_ms: ours,
        torch_ms: theirs,
        loads,
        threads: f.threads,
      }),
    );
  }

  const g = (ms: number, flops: number) => (flops / ms / 1e6).toFixed(1);
  console.log(
    `\n${'case'.padEnd(8)}${'ours ms/step'.padStart(14)}${'GFLOP/s'.padStart(9)}${py ? `${'PyTorch ms'.padStart(12)}${'GFLOP/s'.padStart(9)}${'ours/PyTorch'.padStart(14)}${'speed-up'.padStart(10)}` : ''}`,
  );
  for (const r of rows) {
    const t = r.torch;
    console.log(
      `${r.name.padEnd(8)}${r.ours.toFixed(2).padStart(14)}${g(r.ours, r.flops).padStart(9)}${t === undefined ? '' : `${t.toFixed(2).padStart(12)}${g(t, r.flops).padStart(9)}${(r.ours / t).toFixed(2).padStart(13)}×${(t / r.ours).toFixed(2).padStart(9)}×`}`,
    );
  }
  if (py)
    console.log(
      `goal: no slower than PyTorch (ours/PyTorch ≤ 1): ${rows.every((r) => r.ours <= r.torch!) ? 'met' : 'not met'}`,
    );
  else console.log('PyTorch reference skipped: our figures only');
  console.log(
    `medians over ${f.rounds} rounds of ${f.steps} steps; 1-minute load at the start of each round: ${rows.map((r) => `${r.name} ${r.loads.map((l) => l.toFixed(2)).join('/')}`).join(', ')}`,
  );
}

if (!restartWithTrainingMalloc())
  main().catch((e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  });

/**
 * The GPU bench: one command on a Linux machine with an NVIDIA GPU (no network needed; about 5
 * minutes on an H100, never more than --budget seconds):
 *
 *   npm run bench:gpu -- [--providers auto --models gpt2,smollm2 --only sft,decode,ppo,grpo
 *                         --no-torch --python PATH --peak-tflops 0 --budget 450]
 *
 * 1. The GPU: nvidia-smi must list one, else the bench stops at once and says so.
 * 2. Our execution providers: each of --providers (auto: CUDA where onnxruntime-node's CUDA
 *    provider library is installed, else WebGPU; or a list such as cuda,webgpu) is checked on the
 *    engine's probe graph; those that fail are reported with the reason, and none working stops it.
 * 3. PyTorch on the same GPU where `python3 -c 'import torch; torch.cuda.is_available()'` is true.
 * 4. For GPT-2 124M and SmolLM2-135M's shape (30 layers, d 576, 9 heads, 3 KV heads, MLP 1536,
 *    vocab 49152), the existing benches, each in a child process with --provider and --device:
 *    bench/sft.ts (an SFT step; KV-cache decoding), bench/ppo.ts (one PPO iteration), bench/grpo.ts
 *    (one GRPO iteration). PyTorch's PPO and GRPO references are GPT-2s: SmolLM2 runs ours alone.
 *
 * One table: tokens/s (SFT: trained tokens; decode: new tokens; PPO and GRPO: prompt + response
 * tokens of the iteration's episodes per second of the iteration), MFU (matmul FLOPs, as
 * bench_torch.py counts them, over the GPU's dense FP32 peak: a table of known GPUs, or
 * --peak-tflops) and peak device memory (what nvidia-smi shows each process holding, polled while
 * the case runs; ours the node process, PyTorch's the python one).
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as path from 'path';
import { Provider, Runtime } from '../src/engine/runtime';
import { ModelConfig, PRESETS } from '../src/model/config';
import { findPython, matmulParams, parseFlags } from './common';

const DEFAULTS = {
  providers: 'auto',
  models: 'gpt2,smollm2',
  only: 'sft,decode,ppo,grpo',
  'no-torch': false,
  python: '',
  'peak-tflops': 0,
  budget: 450,
};
type Flags = typeof DEFAULTS;
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const MODELS: Record<string, { preset: string; arch: string; config: ModelConfig }> = {
  gpt2: { preset: 'gpt2', arch: 'gpt2', config: PRESETS.gpt2 },
  smollm2: { preset: 'smollm2-135m', arch: 'llama', config: PRESETS['smollm2-135m'] },
};

/** Dense FP32 peaks (TFLOP/s) of GPUs by a part of nvidia-smi's name, most specific first. */
const FP32_PEAK_TFLOPS: [string, number][] = [
  ['H200', 67],
  ['H100 PCIe', 51],
  ['H100 NVL', 60],
  ['H100', 67],
  ['A100', 19.5],
  ['L40S', 91.6],
  ['L4', 30.3],
  ['A10', 31.2],
  ['RTX 4090', 82.6],
  ['V100', 15.7],
  ['T4', 8.1],
];

/** The GPU's name, or an error that says why there is none. */
export function nvidiaGpu(): string {
  if (process.platform !== 'linux') throw new Error(`bench:gpu runs on Linux, not ${process.platform}`);
  let listed: string;
  try {
    listed = execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'nvidia-smi is not installed' : (e as Error).message;
    throw new Error(`bench:gpu needs an NVIDIA GPU and its driver: ${why.split('\n')[0]}`);
  }
  const name = listed.split('\n').find((l) => l.trim());
  if (!name) throw new Error('bench:gpu needs an NVIDIA GPU: nvidia-smi lists none');
  return name.trim();
}

/** The providers of --providers that pass the engine's probe on this machine, and why the others failed. */
async function workingProviders(choice: string): Promise<{ working: Provider[]; failed: string[] }> {
  const wanted = (choice === 'auto' ? 'cuda,webgpu' : choice).split(',') as Provider[];
  const working: Provider[] = [],
    failed: string[] = [];
  for (const provider of wanted) {
    try {
      await Runtime.create({ provider });
      working.push(provider);
      if (choice === 'auto') break;
    } catch (e) {
      const hint =
        provider === 'cuda'
          ? ' (the CUDA provider library is installed once, with network, by ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js)'
          : '';
      failed.push(`${provider}: ${(e as Error).message.split('\n')[0]}${hint}`);
    }
  }
  return { working, failed };
}

function torchOnGpu(py: string): boolean {
  try {
    return execFileSync(py, ['-c', 'import torch; print(torch.cuda.is_available())'], { encoding: 'utf8' }).includes(
      'True',
    );
  } catch {
    return false;
  }
}

/**
 * Polls nvidia-smi while a case runs: the most memory (MB) the node and the python processes
 * each held on the GPU at once.
 */
function memoryPoller() {
  const peak = { ours: 0, torch: 0 };
  const timer = setInterval(() => {
    const poll = spawn('nvidia-smi', [
      '--query-compute-apps=process_name,used_memory',
      '--format=csv,noheader,nounits',
    ]);
    let out = '';
    poll.stdout.on('data', (d) => (out += d));
    poll.on('close', () => {
      const now = { ours: 0, torch: 0 };
      for (const line of out.split('\n').filter((l) => l.includes(','))) {
        const [name, mb] = line.split(',').map((s) => s.trim());
        now[/python/i.test(name) ? 'torch' : 'ours'] += Number(mb) || 0;
      }
      peak.ours = Math.max(peak.ours, now.ours);
      peak.torch = Math.max(peak.torch, now.torch);
    });
    poll.on('error', () => {});
  }, 200);
  return { peak, stop: () => clearInterval(timer) };
}

/** Runs one bench script with `args` until it ends or `seconds` pass; its JSON lines, and the memory peaks. */
async function runBench(script: string, args: (string | number)[], seconds: number) {
  const tsx = path.join(__dirname, '..', 'node_modules', '.bin', 'tsx');
  const memory = memoryPoller();
  const child: ChildProcess = spawn(tsx, [path.join(__dirname, script), ...args.map(String)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '',
    err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), seconds * 1000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(killer);
  memory.stop();
  if (code !== 0)
    throw new Error(
      `${script} ${code === null ? 'ran out of time' : `failed (${code})`}: ${err.trim().split('\n').slice(-3).join(' | ')}`,
    );
  const lines = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Json);
  return { lines, memory: memory.peak };
}

interface Row {
  model: string;
  provider: string;
  what: string;
  ours?: number;
  torch?: number;
  oursFlops?: number;
  torchFlops?: number;
  oursMb?: number;
  torchMb?: number;
  note?: string;
}

/** The cases of one model on one provider, as rows; `torchArgs` is empty without PyTorch on the GPU. */
async function modelCases(f: Flags, name: string, provider: Provider, torch: string[], deadline: number) {
  const { preset, arch, config } = MODELS[name];
  const only = new Set(f.only.split(','));
  const n = matmulParams(config);
  const rows: Row[] = [];
  const left = () => (deadline - Date.now()) / 1000;
  const row = (what: string, r: Omit<Row, 'model' | 'provider' | 'what'>) =>
    rows.push({ model: name, provider, what, ...r });
  const attempt = async (what: string, run: () => Promise<void>) => {
    if (!only.has(what)) return;
    if (left() < 30) return row(what, { note: 'skipped: out of --budget' });
    try {
      await run();
    } catch (e) {
      row(what, { note: (e as Error).message.slice(0, 200) });
    }
  };
  const common = ['--provider', provider, ...torch];
  const sft = (part: string) => [
    '--arch',
    arch,
    '--layers',
    config.nLayer,
    '--d',
    config.nEmbd,
    '--heads',
    config.nHead,
    '--ctx',
    256,
    '--rounds',
    1,
    '--only',
    part,
    ...common,
  ];
  await attempt('sft', async () => {
    const { lines, memory } = await runBench('sft.ts', [...sft('train'), '--warmup', 1, '--steps', 3], left());
    const t = lines[0].train,
      ref = t.ref[0];
    const tokens = 8 * 256,
      flops = tokens * (6 * n + 12 * config.nLayer * 256 * config.nHead * config.headDim);
    row('sft', {
      ours: tokens / (t.ms / 1000),
      torch: ref?.tokens_per_s,
      oursFlops: flops / (t.ms / 1000),
      torchFlops: ref && flops / (ref.ms_per_step / 1000),
      oursMb: memory.ours,
      torchMb: ref && memory.torch,
    });
  });
  await attempt('decode', async () => {
    const args = [...sft('decode'), '--decode-steps', 2, '--new-tokens', 64];
    const { lines, memory } = await runBench('sft.ts', args, left());
    const d = lines[0].decode,
      ref = d.ref[0];
    const ours = d.generated / (d.ms / 1000);
    row('decode', {
      ours,
      torch: ref?.tokens_per_s,
      oursFlops: ours * 2 * n,
      torchFlops: ref && ref.tokens_per_s * 2 * n,
      oursMb: memory.ours,
      torchMb: ref && memory.torch,
    });
  });
  // One iteration of each RL stage: B episodes of P prompt and R response tokens (S = B · (P + R)).
  const rl = (stage: 'ppo' | 'grpo', b: number, flopsOf: (s: number, generated: number) => number) =>
    attempt(stage, async () => {
      const [p, r] = [16, 48];
      const sizes =
        stage === 'ppo' ? ['--batch', b, '--response-length', r] : ['--completions', b, '--max-completion-length', r];
      const args = [
        '--model',
        preset,
        '--ctx',
        128,
        '--prompt-len',
        p,
        ...sizes,
        '--warmup',
        1,
        '--iters',
        2,
        ...common,
      ];
      const { lines, memory } = await runBench(`${stage}.ts`, args, left());
      const mine = lines.find((l) => l.engine),
        ref = lines.find((l) => !l.engine);
      const seconds = (x: Json) => (stage === 'ppo' ? x.total_s : x.med.total_s);
      const tokens = b * (p + r),
        flops = flopsOf(tokens, b * r);
      row(stage, {
        ours: tokens / seconds(mine!),
        torch: ref && tokens / seconds(ref),
        oursFlops: flops / seconds(mine!),
        torchFlops: ref && flops / seconds(ref),
        oursMb: memory.ours,
        torchMb: ref && memory.torch,
        note: ref || !torch.length ? undefined : `PyTorch's ${stage} reference is a GPT-2`,
      });
    });
  // PPO: rollout 2N per new token; reference, value and reward passes 2N per token each; 4 epochs of
  // policy + value updates, 6N per token each. GRPO: rollout, a reference pass, one update.
  await rl('ppo', 16, (s, generated) => 2 * n * generated + 3 * 2 * n * s + 4 * 2 * 6 * n * s);
  await rl('grpo', 32, (s, generated) => 2 * n * generated + 2 * n * s + 6 * n * s);
  return rows;
}

function printRows(gpu: string, peakTflops: number | undefined, rows: Row[]) {
  const num = (x?: number, digits = 0) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits));
  const mfu = (flops?: number) => (peakTflops && flops ? `${((100 * flops) / (peakTflops * 1e12)).toFixed(1)}%` : '—');
  console.log(
    `\n${gpu}${peakTflops ? `, dense FP32 peak ${peakTflops} TFLOP/s` : ' (peak unknown: --peak-tflops N for MFU)'}`,
  );
  const head = [
    'model',
    'provider',
    'case',
    'tokens/s ours',
    'PyTorch',
    'ours/PT',
    'MFU ours',
    'PyTorch',
    'peak MB ours',
    'PyTorch',
  ];
  const widths = [9, 9, 8, 14, 9, 9, 10, 9, 14, 9];
  const line = (cells: string[]) =>
    console.log(cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(''));
  line(head);
  for (const r of rows) {
    if (r.ours === undefined) {
      console.log(`${r.model.padEnd(9)}${r.provider.padEnd(9)}${r.what.padEnd(8)}${r.note}`);
      continue;
    }
    const ratio = r.torch ? `${(r.ours / r.torch).toFixed(2)}×` : '—';
    line([
      r.model,
      r.provider,
      r.what,
      num(r.ours),
      num(r.torch),
      ratio,
      mfu(r.oursFlops),
      mfu(r.torchFlops),
      num(r.oursMb),
      num(r.torchMb),
    ]);
    if (r.note) console.log(`${''.padEnd(26)}(${r.note})`);
  }
}

async function main() {
  const started = Date.now();
  const f = parseFlags(process.argv.slice(2), DEFAULTS, 'npm run bench:gpu -- [--flag value ...]');
  const gpu = nvidiaGpu();
  console.error(`GPU: ${gpu}`);
  const { working, failed } = await workingProviders(f.providers);
  for (const why of failed) console.error(`provider unavailable: ${why}`);
  if (!working.length) throw new Error(`bench:gpu: no execution provider works on this GPU (${failed.join('; ')})`);
  const py = f['no-torch'] ? '' : findPython(f.python);
  const torch = py && torchOnGpu(py) ? ['--device', 'cuda', '--python', py] : ['--no-torch'];
  console.error(
    `ours on ${working.join(', ')}; PyTorch ${torch[0] === '--device' ? `on the GPU (${py})` : 'skipped: no python3 with torch.cuda.is_available()'}`,
  );
  const peakTflops = f['peak-tflops'] || FP32_PEAK_TFLOPS.find(([part]) => gpu.includes(part))?.[1];
  const deadline = started + f.budget * 1000;
  const rows: Row[] = [];
  for (const provider of working)
    for (const name of f.models.split(',')) {
      if (!MODELS[name])
        throw new Error(`--models: unknown model "${name}" (known: ${Object.keys(MODELS).join(', ')})`);
      rows.push(...(await modelCases(f, name, provider, torch, deadline)));
    }
  printRows(gpu, peakTflops, rows);
  console.log(`(${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});

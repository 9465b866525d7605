/**
 * Shared by the engine benches (bench/engine.ts, bench/sft.ts): flags, medians, the PyTorch
 * reference run as a child process, and session-option experiments.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { OnnxModel } from '../src/engine/onnx';
import { saveCheckpoint } from '../src/model/checkpoint';
import { ModelConfig, PRESETS, presetConfig, resizeConfig } from '../src/model/config';
import { initParams } from '../src/model/decoder';
import { Program, Runtime } from '../src/engine/runtime';
import { gpt2Tokenizer } from '../src/model/tokenizer';
import { Rng } from '../src/util/rng';
import { withoutTrainingMalloc } from '../src/util/training-malloc';

export type Flags = Record<string, number | string | boolean>;

/** Flags as `defaults` types them: --name N for numbers, --name TEXT for strings, bare --name for booleans. */
export function parseFlags<T extends Flags>(argv: string[], defaults: T, usage: string): T {
  const flags: Flags = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in defaults) || !argv[i].startsWith('--')) throw new Error(`unknown flag ${argv[i]}\n${usage}`);
    const kind = typeof defaults[name];
    if (kind === 'boolean') flags[name] = true;
    else if (kind === 'string') flags[name] = argv[++i] ?? '';
    else {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v)) throw new Error(`--${name} needs a number`);
      flags[name] = v;
    }
  }
  return flags as T;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Milliseconds of each of `steps` calls of fn after `warmup` untimed ones. */
export async function timeIt(fn: () => Promise<unknown>, warmup: number, steps: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times;
}

export const load1 = () => os.loadavg()[0];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the 1-minute load average is below `max` (or `timeoutS` passes); returns it. */
export async function waitForLoad(max: number, timeoutS: number, what: string): Promise<number> {
  if (!(max > 0)) return load1();
  const deadline = Date.now() + timeoutS * 1000;
  if (load1() >= max)
    console.error(`[${what}] waiting for the 1-minute load (${load1().toFixed(2)}) to fall below ${max}...`);
  while (load1() >= max && Date.now() < deadline) await sleep(5000);
  if (load1() >= max) console.error(`[${what}] load still ${load1().toFixed(2)} after ${timeoutS}s; measuring anyway`);
  return load1();
}

/** A python3 that imports torch ('' for none): `preferred` first, then the system one, then PATH's. */
export function findPython(preferred: string): string {
  for (const py of [preferred, '/usr/bin/python3', 'python3'].filter(Boolean)) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return '';
}

/**
 * Runs bench/reference/bench_torch.py for one case and returns its JSON line, plus the child's
 * peak RSS (max_rss_mb), read with getrusage when the script ends.
 */
export function torchCase(py: string, bench: string, args: (string | number)[]): Record<string, unknown> {
  const script = path.join(__dirname, 'reference', 'bench_torch.py');
  const wrapper = [
    'import json, resource, runpy, sys',
    'sys.argv = sys.argv[1:]',
    "runpy.run_path(sys.argv[0], run_name='__main__')",
    "print(json.dumps({'max_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))",
  ].join('\n');
  // PyTorch as its users run it: without the training process's malloc settings.
  const r = spawnSync(py, ['-c', wrapper, script, '--case', bench, ...args.map(String)], {
    env: withoutTrainingMalloc(process.env),
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`bench_torch.py --case ${bench} failed (${r.status}):\n${r.stderr}`);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  return { ...lines.find((l) => l.bench === bench), ...lines.find((l) => 'max_rss_mb' in l) };
}

/**
 * Session options for experiments (--ort '{"enableMemPattern":false, "extra":{"session":{...}}}')
 * and profiling: makes `runtime.load` create its sessions with these options added to the ones
 * the engine uses (src/engine/runtime.ts), on CPU. Returns the sessions made, to end profiling.
 */
export function overrideSessionOptions(
  runtime: Runtime,
  extra: ort.InferenceSession.SessionOptions,
): ort.InferenceSession[] {
  const sessions: ort.InferenceSession[] = [];
  runtime.load = async (model: OnnxModel) => {
    const session = await ort.InferenceSession.create(model.bytes, { ...runtime.sessionOptions(), ...extra });
    sessions.push(session);
    return new Program(session, model, 'cpu');
  };
  return sessions;
}

type ProfileEvent = { cat: string; name: string; dur: number; args?: { op_name?: string } };

/**
 * Prints where the time of the busiest session profiled in `dir` went (onnxruntime's profiles are
 * chrome traces): kernel time per op type and the heaviest nodes, per run of that session.
 */
export function printProfile(dir: string, title: string): void {
  const traces = fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .map((n) => {
      const events = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as ProfileEvent[];
      return {
        file: path.join(dir, n),
        events,
        runs: events.filter((e) => e.cat === 'Session' && e.name === 'model_run').length,
      };
    });
  const busiest = traces.sort((a, b) => b.runs - a.runs)[0];
  if (!busiest?.runs) return;
  const { events, runs } = busiest;
  const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  const byOp = new Map<string, number>(),
    byNode = new Map<string, [string, number]>();
  for (const e of kernels) {
    const op = e.args?.op_name ?? '?',
      node = e.name.replace(/_kernel_time$/, '');
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    byNode.set(node, [op, (byNode.get(node)?.[1] ?? 0) + e.dur]);
  }
  const total = [...byOp.values()].reduce((a, b) => a + b, 0);
  const modelRun = events.filter((e) => e.name === 'model_run').reduce((a, e) => a + e.dur, 0);
  const ms = (us: number) => (us / 1000 / runs).toFixed(2).padStart(9);
  console.log(`\n${title}: ${runs} runs profiled in ${busiest.file}`);
  console.log(
    `  per run: ${ms(modelRun).trim()} ms in the run, ${ms(total).trim()} ms in ${kernels.length / runs} kernels`,
  );
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 16))
    console.log(`  ${op.padEnd(22)}${ms(us)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%`);
  console.log('  heaviest nodes:');
  for (const [node, [op, us]] of [...byNode].sort((a, b) => b[1][1] - a[1][1]).slice(0, 10))
    console.log(`  ${node.slice(0, 44).padEnd(46)}${op.padEnd(16)}${ms(us)} ms`);
}

export const ortVersion: string = require('onnxruntime-node/package.json').version;

// ---------------------------------------------------------------- the RL benches (bench/ppo.ts, bench/grpo.ts)

/** `n` prompts of exactly `len` tokens each: random common words. */
export function makePrompts(n: number, len: number, rng: Rng) {
  const tok = gpt2Tokenizer();
  const words =
    ' the a cat dog cow bird fish eats grass seeds meat and what does big small red blue green old new good bad'
      .split(' ')
      .slice(1)
      .map((w) => ' ' + w)
      .filter((w) => tok.encode(w).length === 1);
  const out: { text: string; ids: number[] }[] = [];
  while (out.length < n) {
    const text = Array.from({ length: len }, () => words[rng.int(words.length)]).join('');
    const ids = tok.encode(text);
    if (ids.length === len) out.push({ text, ids });
  }
  return out;
}
/**
 * Full fine-tuning against LoRA of rank `rank` on the same model, each in a fresh process (peak RSS
 * is per process): runs `script` with `args` and --lora-rank 0, then `rank`, and returns the line
 * of each one's stdout that starts with `marker` (its JSON result), parsed.
 */
export function fullAndLora(
  script: string,
  args: string[],
  rank: number,
  marker: string,
): { full: Record<string, unknown>; lora: Record<string, unknown> } {
  const run = (r: number) => {
    const child = [...process.execArgv, script, ...args, '--lora-rank', String(r)];
    console.error(`[${r ? `LoRA r=${r}` : 'full fine-tuning'}] ${path.basename(script)} ${args.join(' ')}`);
    const res = spawnSync(process.execPath, child, {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (res.status !== 0) throw new Error(`${script} --lora-rank ${r} failed (${res.status})`);
    const line = res.stdout.split('\n').find((l) => l.startsWith(marker));
    if (!line) throw new Error(`${script} --lora-rank ${r} printed no ${marker} line`);
    return JSON.parse(line) as Record<string, unknown>;
  };
  return { full: run(0), lora: run(rank) };
}

/** The LoRA settings the benches train with: every projection, lora_alpha = 2r. */
export const benchLora = (r: number) => ({
  r,
  lora_alpha: 2 * r,
  lora_dropout: 0,
  target_modules: 'all-linear',
  modules_to_save: [],
  use_rslora: false,
});

/**
 * Weights used in matmuls per token, as bench_torch.py counts them: per layer the attention
 * projections and the MLP's, and the tied LM head (no embeddings, norms or biases).
 */
export function matmulParams(cfg: ModelConfig): number {
  const d = cfg.nEmbd,
    attn = 2 * d * cfg.nHead * cfg.headDim + 2 * d * cfg.nKvHead * cfg.headDim;
  const mlp = cfg.modelType === 'gpt2' ? 8 * d * d : 3 * d * cfg.intermediateSize!;
  return cfg.nLayer * (attn + mlp) + cfg.vocabSize * d;
}

/**
 * The model of the RL benches' --model preset, resized by --layers, --d and --heads (0: the
 * preset's) and --vocab (0: the preset's) to --ctx. The prompts are GPT-2 tokens, so a smaller
 * vocabulary (SmolLM2's 49152) grows to GPT-2's 50257.
 */
export function benchModel(f: {
  model: string;
  layers: number;
  d: number;
  heads: number;
  ctx: number;
  vocab?: number;
}): ModelConfig {
  const given = (v: number) => (v > 0 ? v : undefined);
  const preset = presetConfig(f.model);
  return resizeConfig(preset, {
    nLayer: given(f.layers),
    nEmbd: given(f.d),
    nHead: given(f.heads),
    nPositions: f.ctx,
    vocabSize: Math.max(given(f.vocab ?? 0) ?? preset.vocabSize, PRESETS.gpt2.vocabSize),
  });
}

/** A random-init language model of `cfg` written as a checkpoint folder in `dir`; returns the folder. */
export function benchPolicy(dir: string, cfg: ModelConfig, seed: number): string {
  const folder = path.join(dir, 'policy');
  saveCheckpoint(folder, { config: cfg, params: initParams(cfg, new Rng(seed)) });
  return folder;
}

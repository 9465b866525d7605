/**
 * One GRPO iteration, our trainer against PyTorch (bench/reference/grpo_bench_torch.py), phase by
 * phase: rollout (num_generations completions per prompt, KV-cache sampling), reward (a reward
 * function of the completion ids: ours a TypeScript file bundled by the trainer, PyTorch's the same
 * function in Python), reference (the frozen reference's log-probs, beta 0.04), update (one
 * optimizer step of the dapo loss with the k3 KL).
 *
 *   npm run bench:grpo -- [--layers 2 --d 128 --heads 4 --ctx 128 --completions 32
 *                          --num-generations 8 --prompt-len 16 --max-completion-length 48
 *                          --warmup 1 --iters 3 --threads N --max-load 0 --wait 900 --no-torch
 *                          --model tiny --vocab 0 --lora-rank 0 --provider cpu --device cpu]
 *
 * Ours is runGroupRl itself on a random-init model (the --model preset, `tiny` unless given, resized
 * by --layers, --d, --heads and --vocab, 0: the preset's), on --provider; PyTorch's (a GPT-2) on
 * --device. --lora-rank trains LoRA adapters of that rank on every projection (0: the whole model).
 * The figures are its own time/rollout, time/reward, time/reference and time/update, medians over
 * the iterations after the warm-up ones, and the fastest per phase, and our process's peak RSS. The
 * same prompts (token ids) go to the PyTorch side.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Provider } from '../src/engine/runtime';
import { ModelConfig } from '../src/model/config';
import { RunEvent } from '../src/protocol/runner';
import { parseExperiment } from '../src/experiment/config';
import { runGroupRl } from '../src/train/group-rl';
import { Rng } from '../src/util/rng';
import { benchModel, benchPolicy, findPython, load1, makePrompts, median, parseFlags, waitForLoad } from './common';
import { restartWithTrainingMalloc, withoutTrainingMalloc } from '../src/util/training-malloc';

const DEFAULTS = {
  model: 'tiny',
  layers: 0,
  d: 0,
  heads: 0,
  vocab: 0,
  'lora-rank': 0,
  ctx: 128,
  completions: 32,
  'num-generations': 8,
  'prompt-len': 16,
  'max-completion-length': 48,
  warmup: 1,
  iters: 3,
  threads: os.availableParallelism(),
  seed: 0,
  'max-load': 0,
  wait: 900,
  'no-torch': false,
  python: '',
  provider: 'cpu',
  device: 'cpu',
};
type Flags = typeof DEFAULTS;
const PHASES = ['rollout_s', 'reward_s', 'reference_s', 'update_s', 'total_s'] as const;
type Phase = (typeof PHASES)[number];
type Times = Record<Phase, number>;

/** The reward both sides compute: the share of even token ids in the completion. */
const REWARD_FILE = [
  'export function evenTokens({ completionIds }: { completionIds: number[][] }): number[] {',
  '  return completionIds.map((ids) => ids.filter((t) => t % 2 === 0).length / Math.max(ids.length, 1));',
  '}',
].join('\n');

async function ours(f: Flags, cfg: ModelConfig, dir: string, promptFile: string) {
  const rewardFile = path.join(dir, 'rewards.ts');
  fs.writeFileSync(rewardFile, REWARD_FILE);
  const exp = parseExperiment(
    {
      name: 'bench-grpo',
      seed: f.seed,
      model: benchPolicy(dir, cfg, f.seed),
      runtime: { provider: f.provider as Provider, threads: f.threads },
      grpo: {
        prompts: promptFile,
        reward_funcs: [rewardFile],
        max_steps: f.warmup + f.iters,
        per_device_train_batch_size: f.completions,
        num_generations: f['num-generations'],
        max_completion_length: f['max-completion-length'],
        temperature: 1,
        beta: 0.04,
        loss_type: 'dapo',
        save_steps: 1_000_000,
        sample_steps: 1_000_000,
        ...(f['lora-rank'] > 0 && {
          peft: { r: f['lora-rank'], lora_alpha: 2 * f['lora-rank'], target_modules: 'all-linear' },
        }),
      },
    },
    'bench',
  );
  const metrics: Record<string, number>[] = [];
  await runGroupRl({
    stage: 'grpo',
    experiment: exp,
    outputDir: path.join(dir, 'run'),
    emit: (e: RunEvent) => {
      if (e.type === 'metrics') metrics.push(e.values);
    },
  });
  const runs: Times[] = metrics.slice(f.warmup).map((m) => {
    const t = {
      rollout_s: m['time/rollout'],
      reward_s: m['time/reward'],
      reference_s: m['time/reference'],
      update_s: m['time/update'],
    };
    return { ...t, total_s: t.rollout_s + t.reward_s + t.reference_s + t.update_s };
  });
  const med = Object.fromEntries(PHASES.map((k) => [k, median(runs.map((r) => r[k]))])) as Times;
  const least = Object.fromEntries(PHASES.map((k) => [k, Math.min(...runs.map((r) => r[k]))])) as Times;
  return { med, least, runs, tokens: metrics.map((m) => m['completions/mean_length']) };
}

function pytorch(
  f: Flags,
  cfg: ModelConfig,
  py: string,
  idsFile: string,
): { med: Times; least: Times } & Record<string, unknown> {
  const flags: Record<string, number | string> = {
    threads: f.threads,
    seed: f.seed,
    warmup: f.warmup,
    iters: f.iters,
    prompts: idsFile,
    completions: f.completions,
    'num-generations': f['num-generations'],
    'max-completion-length': f['max-completion-length'],
    layers: cfg.nLayer,
    d: cfg.nEmbd,
    heads: cfg.nHead,
    vocab: cfg.vocabSize,
    ctx: cfg.nPositions,
    device: f.device,
  };
  const args = [path.join(__dirname, 'reference', 'grpo_bench_torch.py')];
  for (const [k, v] of Object.entries(flags)) args.push(`--${k}`, String(v));
  const r = spawnSync(py, args, { encoding: 'utf8', maxBuffer: 1 << 26, env: withoutTrainingMalloc(process.env) });
  if (r.status !== 0) throw new Error(`grpo_bench_torch.py failed (${r.status}):\n${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
  const med = Object.fromEntries(PHASES.map((k) => [k, out[k]])) as Times;
  const least = Object.fromEntries(PHASES.map((k) => [k, out[k.replace('_s', '_min_s')]])) as Times;
  return { ...out, med, least };
}

async function main() {
  const f = parseFlags(process.argv.slice(2), DEFAULTS, 'npm run bench:grpo -- [--flag value ...]');
  if (f['prompt-len'] + f['max-completion-length'] > f.ctx)
    throw new Error('--prompt-len + --max-completion-length must fit --ctx');
  const cfg = benchModel(f);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-grpo-'));
  const prompts = makePrompts(64, f['prompt-len'], new Rng(f.seed + 3));
  const promptFile = path.join(dir, 'prompts.jsonl'),
    idsFile = path.join(dir, 'prompt_ids.json');
  fs.writeFileSync(promptFile, prompts.map((p) => JSON.stringify({ prompt: p.text })).join('\n') + '\n');
  fs.writeFileSync(idsFile, JSON.stringify(prompts.map((p) => p.ids)));
  const { 'no-torch': _, python: __, ...config } = f;
  console.error(`GRPO iteration bench: ${JSON.stringify(config)}`);

  const loadBefore = await waitForLoad(f['max-load'], f.wait, 'ours');
  const mine = { ...(await ours(f, cfg, dir, promptFile)), maxRssMb: process.resourceUsage().maxRSS / 1024 };
  const loadAfter = load1();
  console.log(JSON.stringify({ bench: 'grpo-iteration', engine: 'rlhf-studio', ...mine, config }));
  const py = f['no-torch'] || cfg.modelType !== 'gpt2' ? '' : findPython(f.python);
  let ref: ReturnType<typeof pytorch> | undefined;
  let refLoad = [0, 0];
  if (py) {
    refLoad = [await waitForLoad(f['max-load'], f.wait, 'pytorch'), 0];
    ref = pytorch(f, cfg, py, idsFile);
    refLoad[1] = load1();
    console.log(JSON.stringify(ref));
  } else
    console.error(
      `PyTorch reference skipped${cfg.modelType === 'gpt2' ? '' : `: grpo_bench_torch.py is a GPT-2, not a ${cfg.modelType}`}`,
    );

  const fmt = (x: number) => x.toFixed(3).padStart(11);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`.padStart(8);
  console.log(`\nmedians (fastest) over ${f.iters} iterations after ${f.warmup} warm-up`);
  console.log(`phase        ours (s)${ref ? '  PyTorch (s)  ours/PyTorch   (fastest: ours  PyTorch   ratio)' : ''}`);
  for (const k of PHASES) {
    const row = `${k.replace('_s', '').padEnd(10)}${fmt(mine.med[k])}`;
    console.log(
      ref
        ? `${row}${fmt(ref.med[k])}${ratio(mine.med[k], ref.med[k])}      ${fmt(mine.least[k])}${fmt(ref.least[k])}${ratio(mine.least[k], ref.least[k])}`
        : row,
    );
  }
  console.log(`peak RSS: ours ${mine.maxRssMb.toFixed(0)} MB`);
  console.log(
    `load (1 min): ours ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}${ref ? `, PyTorch ${refLoad[0].toFixed(2)} → ${refLoad[1].toFixed(2)}` : ''}`,
  );
  if (ref) {
    const r = mine.med.total_s / ref.med.total_s;
    console.log(`goal total ≤ 0.8× PyTorch: ${r <= 0.8 ? 'met' : 'not met'} (${r.toFixed(2)}x)`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

if (!restartWithTrainingMalloc())
  main().catch((e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  });

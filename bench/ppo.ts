/**
 * One PPO iteration, our trainer against PyTorch (bench/reference/ppo_torch.py), phase by phase:
 * rollout (KV-cache sampling), score (logprobs, ref_logprobs, values and the reward model's
 * score), update (num_ppo_epochs × num_mini_batches steps of policy + value).
 *
 *   npm run bench:ppo -- [--layers 0 --d 0 --heads 0 --ctx 128 --batch 16 --prompt-len 16
 *                         --response-length 53 --warmup 1 --iters 3 --threads N
 *                         --max-load 1.5 --wait 900 --no-torch --torch-default-malloc --keep DIR
 *                         --python PATH --lora --lora-rank 16 --model tiny --provider cpu --device cpu]
 *
 * Ours is runPpo itself, on random-init models: the policy and reference from the --model preset
 * (`tiny`, a 2-layer GPT-2, unless given) resized by --layers, --d and --heads (0: the preset's),
 * and a reward model of the same shape with a scalar head, written as a checkpoint and named as
 * `reward_model`, so the value model starts from it (as in PyTorch); it
 * scores through the trainer's own reward-model path (Scorer), inside its score timer. The figures
 * are the trainer's own time/rollout, time/score, time/update, medians over the iterations after
 * the warm-up ones, and the fastest iteration per phase (other load only ever adds time). The same
 * prompts (token ids) go to the PyTorch side.
 *
 * Two cores shared with other work make these figures noisy: with --max-load, each side waits
 * (up to --wait seconds) for the 1-minute load average to fall below it, and the load at the start
 * and end of each side is printed. PyTorch runs with glibc's malloc kept from mmap-ing large
 * blocks (ppo_torch.py --malloc tuned): by default its [B, T, vocab] temporaries page-fault in afresh
 * on every use, which nearly doubles its score and update phases; --torch-default-malloc measures
 * that slower default instead.
 *
 * --provider runs ours on another execution provider (cuda, webgpu), --device PyTorch on another
 * device (cuda); PyTorch's reference is a GPT-2, so other model types run ours alone.
 *
 * --lora compares full PPO with PPO on LoRA adapters of rank --lora-rank (16) on every projection
 * (ppo.peft: the policy's and value model's adapters over one shared copy of the SFT weights), on
 * the same models, each run in a process of its own: phase times and peak RSS. --lora-rank alone
 * runs PPO with adapters of that rank (0: full).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { saveCheckpoint } from '../src/model/checkpoint';
import { Provider } from '../src/engine/runtime';
import { ModelConfig } from '../src/model/config';
import { initParams } from '../src/model/decoder';
import { RunEvent } from '../src/protocol/runner';
import { parseExperiment } from '../src/experiment/config';
import { RewardFn, runPpo } from '../src/train/ppo';
import { Scorer } from '../src/train/scorer';
import { Rng } from '../src/util/rng';
import { benchLora, benchModel, benchPolicy, findPython, fullAndLora, load1, makePrompts, waitForLoad } from './common';
import { restartWithTrainingMalloc, withoutTrainingMalloc } from '../src/util/training-malloc';

// ---------------------------------------------------------------- flags

const DEFAULTS = {
  layers: 0,
  d: 0,
  heads: 0,
  ctx: 128,
  batch: 16,
  'prompt-len': 16,
  'response-length': 53,
  warmup: 1,
  iters: 3,
  threads: os.availableParallelism(),
  seed: 0,
  'max-load': 0,
  wait: 900,
  'lora-rank': 0,
};
type Flags = typeof DEFAULTS & {
  'no-torch': boolean;
  'torch-default-malloc': boolean;
  lora: boolean;
  keep?: string;
  python: string;
  model: string;
  provider: string;
  device: string;
};
const STRING_FLAGS = ['keep', 'python', 'model', 'provider', 'device'] as const;

function parseFlags(argv: string[]): Flags {
  const flags: Flags = {
    ...DEFAULTS,
    'no-torch': false,
    'torch-default-malloc': false,
    lora: false,
    python: '',
    model: 'tiny',
    provider: 'cpu',
    device: 'cpu',
  };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '');
    if (name === 'no-torch' || name === 'torch-default-malloc' || name === 'lora') flags[name] = true;
    else if ((STRING_FLAGS as readonly string[]).includes(name))
      flags[name as (typeof STRING_FLAGS)[number]] = argv[++i];
    else if (name in DEFAULTS) {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v)) throw new Error(`--${name} needs a number`);
      (flags as Record<string, unknown>)[name] = v;
    } else
      throw new Error(
        `unknown flag ${argv[i]} (known: ${Object.keys(DEFAULTS)
          .map((k) => `--${k}`)
          .join(' ')} --no-torch --torch-default-malloc --keep DIR --python PATH --model --provider --device)`,
      );
  }
  return flags;
}

// ---------------------------------------------------------------- helpers

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/**
 * The reward: the trainer's own reward-model path (Scorer on the `reward_model` checkpoint, what
 * runPpo uses when given no reward function), wrapped to time it.
 */
async function rewardModel(rmDir: string, provider: Provider, threads: number) {
  const scorer = await Scorer.load(rmDir, { provider, threads });
  let seconds = 0;
  const fn: RewardFn = async (prompts, responses) => {
    const t0 = performance.now();
    const scores = await scorer.scoreTokens(prompts, responses);
    seconds += (performance.now() - t0) / 1000;
    return scores;
  };
  return { fn, seconds: () => seconds, release: () => scorer.release() };
}

// ---------------------------------------------------------------- the two sides

interface PhaseTimes {
  rollout_s: number;
  score_s: number;
  update_s: number;
  total_s: number;
}

async function ours(f: Flags, dir: string, cfg: ModelConfig, promptFile: string, rmDir: string) {
  const iterations = f.warmup + f.iters;
  const exp = parseExperiment(
    {
      name: 'bench-ppo',
      seed: f.seed,
      model: benchPolicy(dir, cfg, f.seed),
      runtime: { provider: f.provider as Provider, threads: f.threads },
      ppo: {
        prompts: promptFile,
        reward_model: rmDir,
        total_episodes: f.batch * iterations,
        per_device_train_batch_size: f.batch,
        num_ppo_epochs: 4,
        num_mini_batches: 1,
        response_length: f['response-length'],
        temperature: 0.7,
        kl_coef: 0.05,
        kl_estimator: 'k1',
        gamma: 1,
        lam: 0.95,
        vf_coef: 0.1,
        cliprange: 0.2,
        cliprange_value: 0.2,
        max_grad_norm: 1,
        logging_steps: 1,
        save_steps: 1_000_000,
        sample_steps: 1_000_000,
        ...(f['lora-rank'] > 0 && { peft: benchLora(f['lora-rank']) }),
      },
    },
    'bench',
  );
  const reward = await rewardModel(rmDir, f.provider as Provider, f.threads);
  const metrics: Record<string, number>[] = [];
  const rewardSeconds: number[] = [];
  const walls: number[] = [];
  let last = performance.now();
  await runPpo({
    experiment: exp,
    outputDir: path.join(dir, 'run'),
    reward: reward.fn,
    emit: (e: RunEvent) => {
      if (e.type === 'metrics') {
        metrics.push(e.values);
        rewardSeconds.push(reward.seconds() - rewardSeconds.reduce((a, b) => a + b, 0));
      }
      if (e.type === 'progress') {
        const now = performance.now();
        walls.push((now - last) / 1000);
        last = now;
      }
    },
  });
  await reward.release();
  const timed = metrics.slice(f.warmup);
  const runs: PhaseTimes[] = timed.map((m) => ({
    rollout_s: m['time/rollout'],
    score_s: m['time/score'],
    update_s: m['time/update'],
    total_s: m['time/rollout'] + m['time/score'] + m['time/update'],
  }));
  const med = (k: keyof PhaseTimes) => median(runs.map((r) => r[k]));
  const least = (k: keyof PhaseTimes) => Math.min(...runs.map((r) => r[k]));
  return {
    bench: 'ppo-iteration',
    engine: 'rlhf-studio (onnxruntime-node ' + require('onnxruntime-node/package.json').version + ')',
    rollout_s: med('rollout_s'),
    score_s: med('score_s'),
    update_s: med('update_s'),
    total_s: med('total_s'),
    rollout_min_s: least('rollout_s'),
    score_min_s: least('score_s'),
    update_min_s: least('update_s'),
    total_min_s: least('total_s'),
    reward_model_s: median(rewardSeconds.slice(f.warmup)),
    iteration_s: median(walls.slice(f.warmup)), // whole iteration, between progress events
    per_iteration: runs,
    tokens_per_second: median(timed.map((m) => m.tokens_per_second)),
    scores: timed.map((m) => m['objective/scores']),
    kl: timed.map((m) => m['objective/kl']),
    lora_rank: f['lora-rank'],
    max_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
}

function pytorch(f: Flags, cfg: ModelConfig, py: string, idsFile: string) {
  const args = [
    path.join(__dirname, 'reference', 'ppo_torch.py'),
    '--threads',
    f.threads,
    '--seed',
    f.seed,
    '--warmup',
    f.warmup,
    '--iters',
    f.iters,
    '--batch',
    f.batch,
    '--prompts',
    idsFile,
    '--response-length',
    f['response-length'],
    '--layers',
    cfg.nLayer,
    '--d',
    cfg.nEmbd,
    '--heads',
    cfg.nHead,
    '--vocab',
    cfg.vocabSize,
    '--ctx',
    cfg.nPositions,
    '--device',
    f.device,
    '--temperature',
    0.7,
    '--num-ppo-epochs',
    4,
    '--num-mini-batches',
    1,
  ].map(String);
  if (f['torch-default-malloc']) args.push('--malloc', 'default');
  const r = spawnSync(py, args, { encoding: 'utf8', maxBuffer: 1 << 26, env: withoutTrainingMalloc(process.env) });
  if (r.status !== 0) throw new Error(`ppo_torch.py failed (${r.status}):\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as PhaseTimes & Record<string, unknown>;
}

// ---------------------------------------------------------------- main

/** Full PPO against PPO with LoRA adapters of rank --lora-rank (16 unless given), each in its own process. */
function compareLora(argv: string[], f: Flags): void {
  const rank = f['lora-rank'] || 16;
  const args = argv.filter((a, i) => a !== '--lora' && a !== '--lora-rank' && argv[i - 1] !== '--lora-rank');
  const { full, lora } = fullAndLora(__filename, [...args, '--no-torch'], rank, '{"bench":"ppo-iteration"');
  const rows: [string, string, string][] = [
    ['rollout', 'rollout_s', 's'],
    ['score', 'score_s', 's'],
    ['update', 'update_s', 's'],
    ['total', 'total_s', 's'],
    ['peak RSS', 'max_rss_mb', 'MB'],
  ];
  console.log(`\nfull PPO vs PPO with LoRA r=${rank} (all-linear), ${JSON.stringify(full.config)}`);
  console.log(`${'what'.padEnd(12)}${'full'.padStart(14)}${'LoRA'.padStart(14)}   LoRA/full`);
  for (const [what, key, unit] of rows) {
    const a = Number(full[key]),
      b = Number(lora[key]);
    const fmt = (x: number) => `${x >= 100 ? x.toFixed(0) : x.toFixed(3)} ${unit}`.padStart(14);
    console.log(`${what.padEnd(12)}${fmt(a)}${fmt(b)}   ${((100 * b) / a).toFixed(1)} %`);
  }
  const ratio = Number(lora.max_rss_mb) / Number(full.max_rss_mb);
  console.log(
    `goal: peak RSS with LoRA < 60 % of full PPO's: ${ratio < 0.6 ? 'met' : 'not met'} (${(100 * ratio).toFixed(1)} %)`,
  );
}

async function main() {
  const argv = process.argv.slice(2);
  const f = parseFlags(argv);
  if (f.lora) return compareLora(argv, f);
  const cfg = benchModel(f);
  if (f['prompt-len'] + f['response-length'] > f.ctx)
    throw new Error(`--prompt-len + --response-length must fit --ctx (${f.ctx})`);
  const dir = f.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'bench-ppo-'));
  fs.mkdirSync(dir, { recursive: true });

  const prompts = makePrompts(Math.max(64, f.batch), f['prompt-len'], new Rng(f.seed + 3));
  const promptFile = path.join(dir, 'prompts.jsonl'),
    idsFile = path.join(dir, 'prompt_ids.json');
  fs.writeFileSync(promptFile, prompts.map((p) => JSON.stringify({ prompt: p.text })).join('\n') + '\n');
  fs.writeFileSync(idsFile, JSON.stringify(prompts.map((p) => p.ids)));
  const rmDir = path.join(dir, 'reward-model');
  saveCheckpoint(rmDir, { config: cfg, params: initParams(cfg, new Rng(f.seed + 1), 'score') });

  const config = {
    batch: f.batch,
    prompt_len: f['prompt-len'],
    response_length: f['response-length'],
    model: f.model,
    layers: cfg.nLayer,
    d: cfg.nEmbd,
    heads: cfg.nHead,
    vocab: cfg.vocabSize,
    ctx: f.ctx,
    temperature: 0.7,
    top_k: 0,
    top_p: 1,
    num_ppo_epochs: 4,
    num_mini_batches: 1,
    threads: f.threads,
    warmup: f.warmup,
    iters: f.iters,
  };
  console.error(`PPO iteration bench: ${JSON.stringify(config)}`);

  const loadBefore = await waitForLoad(f['max-load'], f.wait, 'ours');
  const o = await ours(f, dir, cfg, promptFile, rmDir);
  const mine = { ...o, load_before: loadBefore, load_after: load1(), config };
  console.log(JSON.stringify(mine));

  let ref: (PhaseTimes & Record<string, unknown>) | undefined;
  const py = f['no-torch'] || cfg.modelType !== 'gpt2' ? '' : findPython(f.python);
  if (!py) {
    console.error(
      f['no-torch']
        ? 'PyTorch reference skipped (--no-torch)'
        : cfg.modelType !== 'gpt2'
          ? `PyTorch reference skipped: ppo_torch.py is a GPT-2, not a ${cfg.modelType}`
          : 'PyTorch reference skipped: no python3 with torch found',
    );
  } else {
    const before = await waitForLoad(f['max-load'], f.wait, 'pytorch');
    ref = { ...pytorch(f, cfg, py, idsFile), load_before: before, load_after: load1() };
    console.log(JSON.stringify(ref));
  }

  const fmt = (x: number) => x.toFixed(3).padStart(11);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`.padStart(8);
  const rows: [string, keyof PhaseTimes][] = [
    ['rollout', 'rollout_s'],
    ['score', 'score_s'],
    ['update', 'update_s'],
    ['total', 'total_s'],
  ];
  const least = (r: Record<string, unknown>, k: string) => Number(r[k.replace('_s', '_min_s')]);
  console.log(`\nmedians (fastest) over ${f.iters} iterations after ${f.warmup} warm-up`);
  console.log(
    `phase      ours (s)  ${ref ? 'PyTorch (s)  ours/PyTorch   (fastest: ours  PyTorch   ratio)' : '(fastest)'}`,
  );
  for (const [name, k] of rows) {
    const mineMin = least(mine, k);
    console.log(
      `${name.padEnd(8)}${fmt(mine[k])}${ref ? `${fmt(ref[k])}${ratio(mine[k], ref[k])}      ${fmt(mineMin)}${fmt(least(ref, k))}${ratio(mineMin, least(ref, k))}` : fmt(mineMin)}`,
    );
  }
  console.log(
    `(ours: the graphs draw the tokens, the host feeds one uniform per token; score includes the reward model, ${mine.reward_model_s.toFixed(3)} s)`,
  );
  console.log(
    `(whole iteration wall: ours ${mine.iteration_s.toFixed(3)} s${ref ? `, PyTorch ${Number(ref.iteration_s).toFixed(3)} s; PyTorch malloc: ${ref.malloc}` : ''})`,
  );
  console.log(
    `load (1 min): ours ${loadBefore.toFixed(2)} → ${mine.load_after.toFixed(2)}${ref ? `, PyTorch ${Number(ref.load_before).toFixed(2)} → ${Number(ref.load_after).toFixed(2)}` : ''}`,
  );
  if (ref)
    for (const [what, key, goal] of [
      ['rollout', 'rollout_s', 0.7],
      ['total', 'total_s', 0.8],
    ] as const)
      console.log(
        `goal ${what} ≤ ${goal}× PyTorch: ${mine[key] / ref[key] <= goal ? 'met' : 'not met'} (${(mine[key] / ref[key]).toFixed(2)}x)`,
      );
  if (!f.keep) fs.rmSync(dir, { recursive: true, force: true });
}

if (!restartWithTrainingMalloc())
  main().catch((e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  });

/**
 * One DPO step, our engine against PyTorch (bench_torch.py's gpt2-dpo case, with TRL's loss from
 * dpo_torch.py), on the same GPT-2 layout as bench:sft (4 layers, d=256, 4 heads, context 128,
 * vocab 50257), both starting from the same random init.
 *
 *   npm run bench:dpo -- [--layers 4 --d 256 --heads 4 --ctx 128 --vocab 50257 --pairs 4 --prompt 64
 *                         --warmup 2 --steps 5 --rounds 3 --threads N --no-torch --python PATH
 *                         --max-load 0 --wait 600 --profile]
 *
 * A step is --pairs pairs, 2 × pairs rows of --ctx tokens (the first --prompt of them the prompt,
 * the rest the scored response): the frozen reference's log-probs of the rows, then the policy's
 * forward pass, the sigmoid DPO loss and TRL's metrics, backward, clipping to norm 1 and AdamW, as
 * a step of TRL's DPOTrainer. Ours runs them as the stage does: the reference graph
 * (referenceLogpsGraph, weights under "ref.") and the training step (dpoLossGraph +
 * buildTrainGraph); in training the reference pass runs once per pair before the first step, here
 * every step, so both sides do the same work. PyTorch computes the logits at every position, as
 * TRL does by default; ours only where a response token is predicted. Rounds alternate our runs
 * with PyTorch's, so both see similar load.
 * --profile prints where the time of our training step goes, by op type.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Runtime, hostTensor } from '../src/engine/runtime';
import { State } from '../src/engine/state';
import { TrainStep } from '../src/engine/step';
import { buildTrainGraph } from '../src/engine/train-graph';
import { adamw } from '../src/engine/optim';
import { toOnnx } from '../src/engine/onnx';
import { ModelConfig, PRESETS, resizeConfig } from '../src/model/config';
import { initParams } from '../src/model/decoder';
import { DpoPair } from '../src/train/dpo-data';
import { dpoLossGraph, referenceLogpsGraph } from '../src/train/dpo-loss';
import { pairRowFeeds } from '../src/train/dpo-batch';
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
  layers: 4,
  d: 256,
  heads: 4,
  ctx: 128,
  vocab: 50257,
  pairs: 4,
  prompt: 64,
  warmup: 2,
  steps: 5,
  rounds: 3,
  threads: os.availableParallelism(),
  seed: 0,
  'max-load': 0,
  wait: 600,
  'no-torch': false,
  python: '',
  profile: false,
};
type Flags = typeof DEFAULTS;
const USAGE = `flags: ${Object.keys(DEFAULTS)
  .map((k) => `--${k}`)
  .join(' ')}`;
/** Times PyTorch's speed, as bench:sft's SFT goal on GPT-2. */
const GOAL = 1.25;

/** Pairs of random token rows of ctx + 1 ids, the ids after the prompt scored. */
function randomPairs(f: Flags): DpoPair[] {
  const rng = new Rng(f.seed + 1);
  const row = () => ({
    ids: Array.from({ length: f.ctx + 1 }, () => rng.int(f.vocab)),
    lossMask: Array.from({ length: f.ctx + 1 }, (_, i) => (i >= f.prompt ? 1 : 0)),
  });
  return Array.from({ length: f.pairs }, () => ({ prompt: { text: '', ids: [] }, chosen: row(), rejected: row() }));
}

/** Our DPO steps: the reference graph, then the training step fed its log-probs; ms per step. */
async function ours(f: Flags, cfg: ModelConfig) {
  const runtime = await Runtime.create({ provider: 'cpu', threads: f.threads });
  const profileDir = f.profile ? fs.mkdtempSync(path.join(os.tmpdir(), 'bench-dpo-profile-')) : undefined;
  const sessions = profileDir
    ? overrideSessionOptions(runtime, { enableProfiling: true, profileFilePrefix: path.join(profileDir, 'dpo') })
    : [];
  const state = new State(runtime);
  for (const [name, t] of initParams(cfg, new Rng(f.seed))) {
    state.setHost(name, t.data as Float32Array, t.shape);
    state.setHost(`ref.${name}`, t.data as Float32Array, t.shape);
  }
  const settings = { beta: 0.1, loss_type: 'sigmoid' as const, label_smoothing: 0 };
  const graph = dpoLossGraph(cfg, settings);
  const step = await TrainStep.create(
    buildTrainGraph({
      ...graph,
      optimizer: adamw({ weightDecay: 0 }),
      maxGradNorm: 1,
      updateApart: runtime.updatesApart,
    }),
    state,
  );
  const reference = await runtime.load(toOnnx(referenceLogpsGraph(cfg, false, 'ref.'), 'dpo_reference'));
  const { feeds } = pairRowFeeds(randomPairs(f), 0);
  let at = 0;
  const losses: number[] = [];
  const run = async () => {
    const logps = (await reference.run(state.feedsFor(reference, feeds))).logps.data as Float32Array;
    const refFeeds = {
      ref_chosen_logps: hostTensor('float32', logps.slice(0, f.pairs), [f.pairs]),
      ref_rejected_logps: hostTensor('float32', logps.slice(f.pairs), [f.pairs]),
    };
    losses.push((await step.run([{ ...feeds, ...refFeeds }], 1e-4, ++at)).loss);
  };
  return {
    time: (round: number) => timeIt(run, round === 0 ? f.warmup : 1, f.steps),
    losses,
    release: async () => {
      if (profileDir) {
        sessions.forEach((session) => session.endProfiling());
        printProfile(profileDir, 'DPO training step');
      }
      await reference.release();
      await step.release();
      await state.release();
    },
  };
}

async function main() {
  const f = parseFlags(process.argv.slice(2), DEFAULTS, USAGE);
  const cfg = resizeConfig(PRESETS.tiny, {
    nLayer: f.layers,
    nEmbd: f.d,
    nHead: f.heads,
    nPositions: f.ctx,
    vocabSize: f.vocab,
  });
  const config = {
    layers: f.layers,
    d: f.d,
    heads: f.heads,
    ctx: f.ctx,
    vocab: f.vocab,
    pairs: f.pairs,
    prompt: f.prompt,
  };
  console.error(`DPO bench, onnxruntime-node ${ortVersion}, ${f.threads} threads: ${JSON.stringify(config)}`);
  const py = f['no-torch'] ? '' : findPython(f.python);
  if (!py) console.error('PyTorch reference skipped');
  const torchArgs = [
    ...['--threads', f.threads, '--seed', f.seed, '--d', f.d, '--heads', f.heads, '--layers', f.layers],
    ...['--vocab', f.vocab, '--ctx', f.ctx, '--batch', f.pairs, '--prompt', f.prompt],
    ...['--warmup', f.warmup, '--steps', f.steps],
  ];
  const bench = await ours(f, cfg);
  const mine: number[] = [],
    theirs: number[] = [],
    theirsFastest: number[] = [],
    loads: number[] = [];
  for (let r = 0; r < f.rounds; r++) {
    loads.push(await waitForLoad(f['max-load'], f.wait, `round ${r + 1}`));
    const times = await bench.time(r);
    mine.push(...times);
    const torch = py ? torchCase(py, 'gpt2-dpo', torchArgs) : undefined;
    if (torch) theirs.push(Number(torch.ms_per_step));
    if (torch) theirsFastest.push(Number(torch.ms_min));
    const vs = torch ? `, PyTorch ${torch.ms_per_step} ms` : '';
    console.error(`[round ${r + 1}] ours ${median(times).toFixed(1)} ms${vs} (load ${load1().toFixed(2)})`);
  }
  await bench.release();

  const tokens = 2 * f.pairs * f.ctx;
  const ms = median(mine);
  const torchMs = theirs.length ? median(theirs) : undefined;
  const ratio = torchMs && torchMs / ms;
  // The fastest step of each side: the least disturbed by other load on a shared machine.
  const fastest = Math.min(...mine);
  const torchFastest = theirsFastest.length ? Math.min(...theirsFastest) : undefined;
  const fastestRatio = torchFastest && torchFastest / fastest;
  const result = { ms, torch_ms: torchMs, ratio, fastest_ms: fastest, torch_fastest_ms: torchFastest, fastestRatio };
  console.log(JSON.stringify({ bench: 'dpo', engine: `onnxruntime-node ${ortVersion}`, config, ...result }));
  console.log(`\nDPO step (policy + reference forward, backward, AdamW), ${tokens} tokens:`);
  console.log(`  ours     ${ms.toFixed(1)} ms/step, ${(tokens / (ms / 1000)).toFixed(0)} tokens/s`);
  if (torchMs && ratio) {
    console.log(`  PyTorch  ${torchMs.toFixed(1)} ms/step, ${(tokens / (torchMs / 1000)).toFixed(0)} tokens/s`);
    console.log(
      `  ratio    ${ratio.toFixed(2)}× PyTorch's tokens/s (goal ≥ ${GOAL}×: ${ratio >= GOAL ? 'met' : 'not met'})`,
    );
    console.log(
      `  fastest step: ours ${fastest.toFixed(1)} ms, PyTorch ${torchFastest!.toFixed(1)} ms, ratio ${fastestRatio!.toFixed(2)}×`,
    );
  }
  console.log(
    `  first losses ${bench.losses
      .slice(0, 3)
      .map((x) => x.toFixed(4))
      .join(' ')} (ln 2 = 0.6931 at step 1)`,
  );
  console.log(
    `medians over ${f.rounds} rounds; 1-minute load at the start of each round: ${loads.map((l) => l.toFixed(2)).join('/')}; now ${load1().toFixed(2)}`,
  );
}

if (!restartWithTrainingMalloc())
  main().catch((e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  });

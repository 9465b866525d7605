#!/usr/bin/env node
/**
 * The headless entry: the same pipeline the extension runs, from a terminal (CI, remote boxes,
 * benchmarks). `rlhf demo` trains on the bundled demo data; the other commands take an experiment
 * config file.
 */
import * as path from 'path';
import { packageRoot } from './util/package-root';
import { Command, InvalidArgumentError, Option } from 'commander';
import { PROVIDERS, Runtime } from './engine/runtime';
import { State } from './engine/step';
import { gpt2Tokenizer } from './model/tokenizer';
import { RunEvent } from './protocol/runner';
import { Rng } from './util/rng';
import { experimentJsonSchema, loadExperiment } from './train/config';
import { Generator } from './train/generate';
import { loadModel, putTensors } from './train/model-state';
import { sampleResponses } from './train/samples';
import { runSft } from './train/sft';

const DEMO_CONFIG = path.join(packageRoot(), 'media', 'demo', 'experiment.json');

function printEvent(e: RunEvent): void {
  switch (e.type) {
    case 'log':
      console.log(e.level === 'info' ? e.message : `${e.level}: ${e.message}`);
      break;
    case 'metrics':
      console.log(`[${e.stage} ${e.step}] ${Object.entries(e.values).map(([k, v]) => `${k} ${formatNumber(v)}`).join('  ')}`);
      break;
    case 'samples':
      console.log(`--- samples at ${e.stage} step ${e.step}`);
      for (const r of e.rows) console.log(`  ${r.prompt.trim()}\n    → ${r.response.trim() || '(nothing)'}`);
      break;
    case 'checkpoint':
      console.log(`saved ${e.path}`);
      break;
    case 'done':
      console.log(e.stopped ? `stopped at step ${e.step}; resume from the last checkpoint` : `done: ${e.outputDir}`);
      break;
    case 'progress':
      break;
  }
}

function formatNumber(v: number): string {
  return Math.abs(v) >= 1000 || Number.isInteger(v) ? v.toFixed(0) : Math.abs(v) < 1e-2 ? v.toExponential(2) : v.toFixed(4);
}

/** Ctrl-C stops a run after the current step and saves a checkpoint; a second Ctrl-C exits. */
function stopOnInterrupt(): AbortSignal {
  const controller = new AbortController();
  process.on('SIGINT', () => {
    if (controller.signal.aborted) process.exit(130);
    console.log('\nstopping after this step (Ctrl-C again to quit now)');
    controller.abort();
  });
  return controller.signal;
}

function runsDir(name: string, stage: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return path.resolve('.rlhf', 'runs', `${stamp}-${name}-${stage}`);
}

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
};
const number = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('expected a number');
  return n;
};

async function sft(configFile: string, opts: { out?: string; resume?: string; steps?: number; provider?: string }) {
  const exp = loadExperiment(configFile);
  if (opts.steps && exp.sft) exp.sft.max_steps = opts.steps;
  if (opts.provider) exp.runtime.provider = opts.provider;
  const outputDir = path.resolve(opts.out ?? runsDir(exp.name, 'sft'));
  console.log(`run directory: ${outputDir}`);
  await runSft({ experiment: exp, outputDir, resumeFrom: opts.resume && path.resolve(opts.resume), emit: printEvent, signal: stopOnInterrupt() });
}

async function generate(prompts: string[], opts: { model: string; maxNewTokens: number; temperature: number; topK: number; topP: number; seed: number; provider: string }) {
  const model = loadModel(path.resolve(opts.model), opts.seed);
  const runtime = await Runtime.create({ provider: opts.provider as never });
  const state = new State(runtime);
  putTensors(state, model.params);
  const tokenizer = gpt2Tokenizer();
  const generator = await Generator.create(runtime, model.config, state, tokenizer.padId);
  const sampling = { maxNewTokens: opts.maxNewTokens, temperature: opts.temperature, topK: opts.topK, topP: opts.topP };
  const rows = await sampleResponses(generator, tokenizer, prompts, new Rng(opts.seed), sampling);
  for (const r of rows) console.log(`${r.prompt}${r.response}`);
}

function providerOption(): Option {
  return new Option('--provider <name>', 'execution provider (overrides the config)').choices(PROVIDERS);
}

export function program(): Command {
  const cli = new Command('rlhf').description('RLHF Studio: SFT, reward model and PPO on your own machine').showHelpAfterError();
  cli
    .command('demo')
    .description('run SFT of a tiny GPT-2 on the bundled demo data, printing samples before and after')
    .option('--out <dir>', 'run directory (default: .rlhf/runs/<time>-demo-sft)')
    .option('--steps <n>', 'training steps', positiveInt)
    .addOption(providerOption())
    .action((opts) => sft(DEMO_CONFIG, opts));
  cli
    .command('sft')
    .description('supervised fine-tuning, as set in the "sft" section of an experiment config')
    .argument('<config>', 'experiment config file (JSON)')
    .option('--out <dir>', 'run directory (default: .rlhf/runs/<time>-<name>-sft)')
    .option('--resume <checkpoint>', 'continue from a checkpoint directory of an earlier run')
    .option('--steps <n>', 'override max_steps', positiveInt)
    .addOption(providerOption())
    .action(sft);
  cli
    .command('generate')
    .description('continue prompts with a model checkpoint')
    .argument('<prompts...>', 'prompt texts')
    .requiredOption('--model <dir>', 'checkpoint directory')
    .option('--max-new-tokens <n>', 'tokens to generate', positiveInt, 48)
    .option('--temperature <t>', '0 for greedy', number, 0.7)
    .option('--top-k <k>', '0 for no top-k', number, 0)
    .option('--top-p <p>', '1 for no nucleus sampling', number, 1)
    .option('--seed <n>', 'sampling seed', number, 0)
    .addOption(providerOption().default('auto'))
    .action(generate);
  cli
    .command('schema')
    .description('print the JSON schema of experiment config files')
    .action(() => console.log(JSON.stringify(experimentJsonSchema(), null, 2)));
  return cli;
}

if (require.main === module) {
  program()
    .parseAsync(process.argv)
    .catch((e: Error) => {
      console.error(`error: ${e.message}`);
      process.exit(1);
    });
}

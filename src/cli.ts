#!/usr/bin/env node
/**
 * The headless entry: the same pipeline the extension runs, from a terminal (CI, remote boxes,
 * benchmarks). `rlhf demo` trains on the bundled demo data; the other commands take an experiment
 * config file.
 */
import * as path from 'path';
import { packageRoot } from './util/package-root';
import { Command, InvalidArgumentError, Option } from 'commander';
import { labelQueue, referenceAnnotator, wordAnnotator } from './data/annotators';
import { generateCandidates } from './train/comparisons';
import { readReferences } from './data/sft';
import { DataError, DataFileError, assertNoDataErrors, readJsonl } from './data/jsonl';
import { exportPreferences, ImportFormat, importPreferences } from './data/preferences';
import { expectString } from './data/preference-record';
import { PROVIDERS, ProviderChoice } from './engine/runtime';
import { EXPERIMENT_STAGES, ExperimentStage } from './protocol/runner';
import { STAGE_INFO } from './shared/stages';
import { Rng } from './util/rng';
import { experimentJsonSchema, loadExperiment } from './experiment/config';
import { runDemo } from './train/demo';
import { mergeAdapterFolder } from './train/merge';
import { sampleFromCheckpoint } from './train/samples';
import { Scorer } from './train/scorer';
import { modelFolder, printEvent, stopOnInterrupt } from './cli/output';
import { StageOptions, runsDir, stage } from './cli/stage';
import { exportCommand } from './cli/export';

const HUB_MODEL = 'or Hugging Face Hub repo id (org/name or org/name@revision, downloaded into the Hugging Face cache)';
const DEMO_CONFIG = path.join(packageRoot(), 'media', 'demo', 'experiment.json');

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

/** The whole pipeline on the demo data, in one run directory. The bundled demo folder is its own workspace. */
async function demo(opts: { out?: string; provider?: ProviderChoice }) {
  const exp = loadExperiment(DEMO_CONFIG, path.dirname(DEMO_CONFIG));
  if (opts.provider) exp.runtime.provider = opts.provider;
  const outputDir = path.resolve(opts.out ?? runsDir('demo', 'pipeline'));
  console.log(`run directory: ${outputDir}`);
  const evalPrompts = path.join(path.dirname(DEMO_CONFIG), 'eval.jsonl');
  await runDemo({ experiment: exp, evalPrompts, outputDir, emit: printEvent, signal: stopOnInterrupt() });
}

/** Scores {"prompt", "response"} lines, printing each with its "score". */
async function score(opts: { model: string; input?: string; provider: string }) {
  const file = opts.input ?? '/dev/stdin';
  const { records, errors } = readJsonl(file, (r) => ({
    prompt: expectString(r.prompt, 'prompt'),
    response: expectString(r.response, 'response'),
  }));
  assertNoDataErrors(errors);
  const scorer = await Scorer.load(await modelFolder(opts.model), { provider: opts.provider as ProviderChoice });
  const rows = records.map((r) => r.value);
  const scores = await scorer.scoreTexts(rows);
  rows.forEach((r, i) => console.log(JSON.stringify({ ...r, score: scores[i] })));
  await scorer.release();
}

async function generate(
  prompts: string[],
  opts: {
    model: string;
    maxNewTokens: number;
    temperature: number;
    topK: number;
    topP: number;
    seed: number;
    provider: string;
  },
) {
  const sampling = { maxNewTokens: opts.maxNewTokens, temperature: opts.temperature, topK: opts.topK, topP: opts.topP };
  const rows = await sampleFromCheckpoint(await modelFolder(opts.model), prompts, new Rng(opts.seed), sampling, {
    provider: opts.provider as ProviderChoice,
  });
  for (const r of rows) console.log(`${r.prompt}${r.response}`);
}

async function candidates(opts: {
  model: string;
  prompts: string;
  out: string;
  n: number;
  maxNewTokens: number;
  temperature: number;
  seed: number;
  provider: string;
}) {
  const summary = await generateCandidates({
    model: await modelFolder(opts.model),
    prompts: opts.prompts,
    queue: opts.out,
    n: opts.n,
    maxNewTokens: opts.maxNewTokens,
    temperature: opts.temperature,
    seed: opts.seed,
    provider: opts.provider as ProviderChoice,
    signal: stopOnInterrupt(),
    onProgress: (p) => console.log(`[${p.done}/${p.total}] ${p.pairs} pairs`),
  });
  console.log(summary.read);
  warnOfBadLines(summary.errors);
  const queued = summary.alreadyQueued > 0 ? ` (${summary.alreadyQueued} prompts were already queued)` : '';
  console.log(
    `${summary.stopped ? 'stopped; run again to resume. ' : ''}${summary.pairs} pairs from ${summary.sampled} prompts added to ${opts.out}${queued}`,
  );
}

async function importPrefs(src: string, dest: string, opts: { format: ImportFormat }) {
  const { imported, errors } = await importPreferences(src, dest, opts.format);
  warnOfBadLines(errors);
  console.log(`imported ${imported} comparisons into ${dest}`);
}

function exportPrefs(src: string, dest: string) {
  const { exported, skipped, errors } = exportPreferences(src, dest);
  warnOfBadLines(errors);
  console.log(
    `exported ${exported} comparisons to ${dest}${skipped > 0 ? ` (${skipped} labeled tie, both_bad or skip left out)` : ''}`,
  );
}

async function labelDemo(queue: string, prefs: string, opts: { rule?: string; reference?: string }) {
  if (!opts.rule === !opts.reference)
    throw new Error('label-demo needs exactly one of --rule WORD and --reference FILE');
  const annotator = opts.rule
    ? wordAnnotator(opts.rule)
    : referenceAnnotator(await readReferences(path.resolve(opts.reference!)));
  const { counts, errors } = await labelQueue(queue, prefs, annotator);
  warnOfBadLines(errors);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const byLabel = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([label, n]) => `${label} ${n}`);
  console.log(`labeled ${total} pairs into ${prefs}${total > 0 ? `: ${byLabel.join(', ')}` : ''}`);
}

function warnOfBadLines(errors: DataError[]): void {
  if (errors.length > 0) console.warn(`warning: skipped ${new DataFileError(errors, 10).message}`);
}

/** `rlhf <stage> <config>` with the options every stage shares. */
function stageCommand(cli: Command, name: ExperimentStage) {
  const { description, steps } = STAGE_INFO[name].cli;
  const command = cli
    .command(name)
    .description(description)
    .argument('<config>', 'experiment config file (JSON)')
    .option(
      '--out <dir>',
      `run directory (default: .rlhf/runs/<time>-<name>-${name} in the workspace folder, recorded for VS Code's Runs view)`,
    )
    .option(
      '--workspace <dir>',
      'the workspace folder: the experiment and the files it names must be inside it (default: the current directory)',
    )
    .addOption(providerOption());
  // Training stages; comparisons go on from what is queued instead.
  if (steps)
    command
      .option('--resume <checkpoint>', 'continue from a checkpoint-N directory of an earlier run')
      .option('--steps <n>', steps, positiveInt);
  command.action((config: string, opts: StageOptions) => stage(name, config, opts));
}

/** The sampling options that `generate` and `candidates` share. */
function withSampling(command: Command, temperature: number): Command {
  return command
    .option('--max-new-tokens <n>', 'tokens per response', positiveInt, 48)
    .option('--temperature <t>', 'sampling temperature (0 for greedy)', number, temperature)
    .option('--seed <n>', 'sampling seed', number, 0)
    .addOption(providerOption().default('auto'));
}

function providerOption(): Option {
  return new Option('--provider <name>', 'execution provider (overrides the config)').choices(PROVIDERS);
}

export function program(): Command {
  const cli = new Command('rlhf')
    .description('RLHF Studio: SFT, reward model and PPO on your own machine')
    .showHelpAfterError();
  cli
    .command('demo')
    .description(
      'the whole pipeline on the bundled demo data: SFT, comparisons, rule-based labels, reward model, PPO, DPO, GRPO, then a judge on held-out prompts',
    )
    .option('--out <dir>', 'run directory (default: .rlhf/runs/<time>-demo-pipeline)')
    .addOption(providerOption())
    .action(demo);
  for (const name of EXPERIMENT_STAGES) stageCommand(cli, name);
  cli
    .command('score')
    .description('score {"prompt", "response"} JSONL lines with a reward model, printing them with their "score"')
    .requiredOption('--model <model>', `reward-model checkpoint directory, ${HUB_MODEL}`)
    .option('--input <file>', 'JSONL file (default: standard input)')
    .addOption(providerOption().default('auto'))
    .action(score);
  const generateCommand = cli
    .command('generate')
    .description('continue prompts with a model checkpoint')
    .argument('<prompts...>', 'prompt texts')
    .requiredOption('--model <model>', `checkpoint directory, ${HUB_MODEL}`)
    .option('--top-k <k>', '0 for no top-k', number, 0)
    .option('--top-p <p>', '1 for no nucleus sampling', number, 1);
  withSampling(generateCommand, 0.7).action(generate);
  const candidatesCommand = cli
    .command('candidates')
    .description('sample responses to prompts and queue pairs of them for labeling (run again to resume)')
    .requiredOption('--model <model>', `checkpoint directory, ${HUB_MODEL}`)
    .requiredOption('--prompts <file>', 'JSONL of {"prompt": text or chat messages}')
    .requiredOption('--out <queue>', 'queue file (JSONL) to add pairs to')
    .option('--n <n>', 'responses per prompt (at least 2)', positiveInt, 2);
  withSampling(candidatesCommand, 0.9).action(candidates);
  cli
    .command('merge')
    .description('merge a LoRA adapter (a PEFT adapter folder) into its base, writing a full Hugging Face model folder')
    .argument('<adapter-dir>', 'adapter folder (adapter_config.json + adapter_model.safetensors)')
    .requiredOption('--out <dir>', 'the model folder to write')
    .action((adapter: string, opts: { out: string }) => {
      mergeAdapterFolder(adapter, opts.out);
      console.log(`merged ${adapter} into its base: ${path.resolve(opts.out)}`);
    });
  labelCommands(cli);
  exportCommand(cli);
  cli
    .command('schema')
    .description('print the JSON schema of experiment config files')
    .action(() => console.log(JSON.stringify(experimentJsonSchema(), null, 2)));
  return cli;
}

/** `rlhf prefs import|export` and `rlhf label-demo`: preference files and rule labels. */
function labelCommands(cli: Command): void {
  const prefs = cli.command('prefs').description('preference files in TRL format: import and export');
  prefs
    .command('import')
    .description('append the comparisons of a file to a preference store')
    .argument('<src>', 'file to import')
    .argument('<dest>', 'preference store (created if missing)')
    .addOption(
      new Option('--format <format>', 'trl: TRL preference JSONL; hh: Anthropic HH-RLHF transcripts')
        .choices(['trl', 'hh'])
        .makeOptionMandatory(),
    )
    .action(importPrefs);
  prefs
    .command('export')
    .description('write the comparisons that have a winner as plain TRL {prompt, chosen, rejected} lines')
    .argument('<src>', 'preference store')
    .argument('<dest>', 'file to write (replaced)')
    .action(exportPrefs);
  cli
    .command('label-demo')
    .description('label a queue by a fixed rule, standing in for a person in the headless demo')
    .argument('<queue>', 'queue file from "candidates"')
    .argument('<prefs>', 'preference store to append labels to')
    .option(
      '--rule <word>',
      'prefer the response containing WORD (ignoring case); if both or neither do, the shorter one; if as long, a tie',
    )
    .option(
      '--reference <file>',
      'prefer the response closer (word overlap) to the completion an SFT file ({"prompt", "completion"} lines) gives its prompt',
    )
    .action(labelDemo);
}

if (require.main === module) {
  program()
    .parseAsync(process.argv)
    .catch((e: Error) => {
      console.error(`error: ${e.message}`);
      process.exit(1);
    });
}

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
import { useSystemLanguage } from './cli/language';
import { t } from '@vscode/l10n';
import { restartWithTrainingMalloc } from './util/training-malloc';

const hubModel = () =>
  t('or Hugging Face Hub repo id (org/name or org/name@revision, downloaded into the Hugging Face cache)');
const DEMO_CONFIG = path.join(packageRoot(), 'media', 'demo', 'experiment.json');

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(t('expected a positive integer'));
  return n;
};
const number = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(t('expected a number'));
  return n;
};

/** The whole pipeline on the demo data, in one run directory. The bundled demo folder is its own workspace. */
async function demo(opts: { out?: string; provider?: ProviderChoice }) {
  const exp = loadExperiment(DEMO_CONFIG, path.dirname(DEMO_CONFIG));
  if (opts.provider) exp.runtime.provider = opts.provider;
  const outputDir = path.resolve(opts.out ?? runsDir('demo', 'pipeline'));
  console.log(t('run directory: {0}', outputDir));
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
  const queued = summary.alreadyQueued > 0 ? t(' ({0} prompts were already queued)', summary.alreadyQueued) : '';
  const added = t('{0} pairs from {1} prompts added to {2}', summary.pairs, summary.sampled, opts.out);
  console.log(`${summary.stopped ? t('stopped; run again to resume. ') : ''}${added}${queued}`);
}

async function importPrefs(src: string, dest: string, opts: { format: ImportFormat }) {
  const { imported, errors } = await importPreferences(src, dest, opts.format);
  warnOfBadLines(errors);
  console.log(t('imported {0} comparisons into {1}', imported, dest));
}

function exportPrefs(src: string, dest: string) {
  const { exported, skipped, errors } = exportPreferences(src, dest);
  warnOfBadLines(errors);
  const done = t('exported {0} comparisons to {1}', exported, dest);
  console.log(skipped > 0 ? t('{0} ({1} labeled tie, both_bad or skip left out)', done, skipped) : done);
}

async function labelDemo(queue: string, prefs: string, opts: { rule?: string; reference?: string }) {
  if (!opts.rule === !opts.reference)
    throw new Error(t('label-demo needs exactly one of --rule WORD and --reference FILE'));
  const annotator = opts.rule
    ? wordAnnotator(opts.rule)
    : referenceAnnotator(await readReferences(path.resolve(opts.reference!)));
  const { counts, errors } = await labelQueue(queue, prefs, annotator);
  warnOfBadLines(errors);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const byLabel = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([label, n]) => `${label} ${n}`);
  console.log(`${t('labeled {0} pairs into {1}', total, prefs)}${total > 0 ? `: ${byLabel.join(', ')}` : ''}`);
}

function warnOfBadLines(errors: DataError[]): void {
  if (errors.length > 0) console.warn(t('warning: skipped {0}', new DataFileError(errors, 10).message));
}

/** `rlhf <stage> <config>` with the options every stage shares. */
function stageCommand(cli: Command, name: ExperimentStage) {
  const { description, steps } = STAGE_INFO[name].cli;
  const command = cli
    .command(name)
    .description(t(description))
    .argument('<config>', t('experiment config file (JSON)'))
    .option(
      '--out <dir>',
      t(
        "run directory (default: .rlhf/runs/<time>-<name>-{0} in the workspace folder, recorded for VS Code's Runs view)",
        name,
      ),
    )
    .option(
      '--workspace <dir>',
      t(
        'the workspace folder: the experiment and the files it names must be inside it (default: the current directory)',
      ),
    )
    .addOption(providerOption());
  // Training stages; comparisons go on from what is queued instead.
  if (steps)
    command
      .option('--resume <checkpoint>', t('continue from a checkpoint-N directory of an earlier run'))
      .option('--steps <n>', t(steps), positiveInt);
  command.action((config: string, opts: StageOptions) => stage(name, config, opts));
}

/** The sampling options that `generate` and `candidates` share. */
function withSampling(command: Command, temperature: number): Command {
  return command
    .option('--max-new-tokens <n>', t('tokens per response'), positiveInt, 48)
    .option('--temperature <t>', t('sampling temperature (0 for greedy)'), number, temperature)
    .option('--seed <n>', t('sampling seed'), number, 0)
    .addOption(providerOption().default('auto'));
}

function providerOption(): Option {
  return new Option('--provider <name>', t('execution provider (overrides the config)')).choices(PROVIDERS);
}

export function program(): Command {
  const cli = new Command('rlhf')
    .description(t('RLHF Studio: SFT, reward model, PPO, DPO, GRPO and RLOO on your own machine'))
    .showHelpAfterError()
    .configureHelp({ styleTitle: (title) => t(title) })
    .helpOption('-h, --help', t('display help for command'))
    .helpCommand('help [command]', t('display help for command'));
  cli
    .command('demo')
    .description(
      t(
        'the whole pipeline on the bundled demo data: SFT, comparisons, rule-based labels, reward model, PPO, DPO, GRPO, then a judge on held-out prompts',
      ),
    )
    .option('--out <dir>', t('run directory (default: .rlhf/runs/<time>-demo-pipeline)'))
    .addOption(providerOption())
    .action(demo);
  for (const name of EXPERIMENT_STAGES) stageCommand(cli, name);
  cli
    .command('score')
    .description(t('score {"prompt", "response"} JSONL lines with a reward model, printing them with their "score"'))
    .requiredOption('--model <model>', t('reward-model checkpoint directory, {0}', hubModel()))
    .option('--input <file>', t('JSONL file (default: standard input)'))
    .addOption(providerOption().default('auto'))
    .action(score);
  const generateCommand = cli
    .command('generate')
    .description(t('continue prompts with a model checkpoint'))
    .argument('<prompts...>', t('prompt texts'))
    .requiredOption('--model <model>', t('checkpoint directory, {0}', hubModel()))
    .option('--top-k <k>', t('0 for no top-k'), number, 0)
    .option('--top-p <p>', t('1 for no nucleus sampling'), number, 1);
  withSampling(generateCommand, 0.7).action(generate);
  const candidatesCommand = cli
    .command('candidates')
    .description(t('sample responses to prompts and queue pairs of them for labeling (run again to resume)'))
    .requiredOption('--model <model>', t('checkpoint directory, {0}', hubModel()))
    .requiredOption('--prompts <file>', t('JSONL of {"prompt": text or chat messages}'))
    .requiredOption('--out <queue>', t('queue file (JSONL) to add pairs to'))
    .option('--n <n>', t('responses per prompt (at least 2)'), positiveInt, 2);
  withSampling(candidatesCommand, 0.9).action(candidates);
  cli
    .command('merge')
    .description(
      t('merge a LoRA adapter (a PEFT adapter folder) into its base, writing a full Hugging Face model folder'),
    )
    .argument('<adapter-dir>', t('adapter folder (adapter_config.json + adapter_model.safetensors)'))
    .requiredOption('--out <dir>', t('the model folder to write'))
    .action((adapter: string, opts: { out: string }) => {
      mergeAdapterFolder(adapter, opts.out);
      console.log(t('merged {0} into its base: {1}', adapter, path.resolve(opts.out)));
    });
  labelCommands(cli);
  exportCommand(cli);
  cli
    .command('schema')
    .description(t('print the JSON schema of experiment config files'))
    .action(() => console.log(JSON.stringify(experimentJsonSchema(), null, 2)));
  return cli;
}

/** `rlhf prefs import|export` and `rlhf label-demo`: preference files and rule labels. */
function labelCommands(cli: Command): void {
  const prefs = cli.command('prefs').description(t('preference files in TRL format: import and export'));
  prefs
    .command('import')
    .description(t('append the comparisons of a file to a preference store'))
    .argument('<src>', t('file to import'))
    .argument('<dest>', t('preference store (created if missing)'))
    .addOption(
      new Option('--format <format>', t('trl: TRL preference JSONL; hh: Anthropic HH-RLHF transcripts'))
        .choices(['trl', 'hh'])
        .makeOptionMandatory(),
    )
    .action(importPrefs);
  prefs
    .command('export')
    .description(t('write the comparisons that have a winner as plain TRL {prompt, chosen, rejected} lines'))
    .argument('<src>', t('preference store'))
    .argument('<dest>', t('file to write (replaced)'))
    .action(exportPrefs);
  cli
    .command('label-demo')
    .description(t('label a queue by a fixed rule, standing in for a person in the headless demo'))
    .argument('<queue>', t('queue file from "candidates"'))
    .argument('<prefs>', t('preference store to append labels to'))
    .option(
      '--rule <word>',
      t(
        'prefer the response containing WORD (ignoring case); if both or neither do, the shorter one; if as long, a tie',
      ),
    )
    .option(
      '--reference <file>',
      t(
        'prefer the response closer (word overlap) to the completion an SFT file ({"prompt", "completion"} lines) gives its prompt',
      ),
    )
    .action(labelDemo);
}

if (require.main === module && !restartWithTrainingMalloc()) {
  useSystemLanguage();
  program()
    .parseAsync(process.argv)
    .catch((e: Error) => {
      console.error(t('error: {0}', e.message));
      process.exit(1);
    });
}

/**
 * The whole RLHF pipeline on the bundled demo data, headless: SFT → comparison candidates →
 * labels → reward model → PPO, then DPO on the same labels and GRPO with the demo's reward
 * functions, and every policy measured on held-out prompts by a judge that is not the reward model
 * (src/data/judge.ts). A documented rule stands in for the person who labels: an annotator who
 * follows the judge's rule and knows each prompt's answer (src/data/annotators.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { judgeAnnotator, labelQueue } from '../data/annotators';
import { loadPrompts } from '../data/formats/stage-data';
import { JUDGE_RULE } from '../data/judge';
import { EmitEvent } from '../protocol/runner';
import { Experiment } from '../experiment/config';
import { writeFileAtomic } from '../util/files';
import { experimentCandidates, generateCandidates } from './comparisons';
import { demoPlot } from './demo-plot';
import { PolicyEval, evaluatePolicies } from './demo-eval';
import { demoReport, reportMarkdown, reportText } from './demo-report';
import { runDpo } from './dpo';
import { runGroupRl } from './group-rl';
import { MetricsLog } from './metrics-log';
import { runPpo } from './ppo';
import { runRm } from './reward';
import { Scorer } from './scorer';
import { runSft } from './sft';
import { promptText } from './samples';

export interface DemoRun {
  experiment: Experiment;
  /** Held-out {"prompt", "answer"} records, in none of the experiment's data, for the judge. */
  evalPrompts: string;
  outputDir: string;
  emit: EmitEvent;
  signal?: AbortSignal;
  /** Sampled responses per held-out prompt for each policy's KL to the SFT policy (default 2). */
  klSamples?: number;
}

export async function runDemo(run: DemoRun): Promise<{ evals: PolicyEval[] } | undefined> {
  const { experiment: exp, outputDir, emit, signal } = run;
  if (!exp.sft || !exp.comparisons || !exp.rm || !exp.ppo || !exp.dpo || !exp.grpo)
    throw new Error('the demo experiment needs "sft", "comparisons", "rm", "ppo", "dpo" and "grpo" sections');
  const step = (message: string) => emit({ type: 'log', level: 'info', message: `\n== ${message}` });
  const info = (message: string) => emit({ type: 'log', level: 'info', message });
  const stage = (name: string) => path.join(outputDir, name);

  step('1/8 supervised fine-tuning');
  const sft = await runSft({ experiment: exp, outputDir: stage('sft'), emit, signal });
  if (sft.stopped) return;

  step('2/8 sampling pairs of responses to compare');
  const queue = stage('comparisons.jsonl');
  const candidates = await generateCandidates({ ...experimentCandidates(exp, sft.modelDir, queue), signal });
  info(`${candidates.pairs} pairs from ${candidates.sampled} prompts in ${queue}`);
  if (candidates.stopped) return;

  step(`3/8 labeling them: the stand-in annotator prefers ${JUDGE_RULE}, then the answer that states the fact`);
  const preferences = stage('preferences.jsonl');
  const answers = await answersOf(exp.comparisons.prompts);
  const { counts } = await labelQueue(queue, preferences, judgeAnnotator(answers, 'demo:judge'));
  info(
    `labels: ${Object.entries(counts)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  );

  step('4/8 training the reward model');
  const rmExp = { ...exp, rm: { ...exp.rm, data: preferences, model: sft.modelDir } };
  const rm = await runRm({ experiment: rmExp, outputDir: stage('rm'), emit, signal });
  if (rm.stopped) return;

  step('5/8 PPO against the reward model');
  const ppoExp = { ...exp, ppo: { ...exp.ppo, sft_model: sft.modelDir, reward_model: rm.modelDir } };
  const ppo = await runPpo({ experiment: ppoExp, outputDir: stage('ppo'), emit, signal });
  if (ppo.stopped) return;

  step('6/8 DPO on the same labels');
  const dpoExp = { ...exp, dpo: { ...exp.dpo, data: preferences, model: sft.modelDir } };
  const dpo = await runDpo({ experiment: dpoExp, outputDir: stage('dpo'), emit, signal });
  if (dpo.stopped) return;

  step(`7/8 GRPO with the reward functions of ${exp.grpo.reward_funcs.join(', ')}`);
  const grpoExp = { ...exp, grpo: { ...exp.grpo, model: sft.modelDir } };
  const grpo = await runGroupRl({ stage: 'grpo', experiment: grpoExp, outputDir: stage('grpo'), emit, signal });
  if (grpo.stopped) return;

  step('8/8 before and after: every policy on held-out prompts, by the judge and the reward model');
  const runtime = { provider: exp.runtime.provider, threads: exp.runtime.threads };
  const scorer = await Scorer.load(rm.modelDir, runtime);
  const policies: [string, string][] = [
    ['SFT', sft.modelDir],
    ['PPO', ppo.modelDir],
    ['DPO', dpo.modelDir],
    ['GRPO', grpo.modelDir],
  ];
  const settings = {
    maxNewTokens: exp.comparisons.max_new_tokens,
    klSamples: run.klSamples ?? 2,
    seed: exp.seed,
    runtime,
  };
  const evals = await evaluatePolicies(policies, run.evalPrompts, scorer, settings).finally(() => scorer.release());
  writeReport(evals, stage('judge'), emit);
  return { evals };
}

/** Prompt → its "answer" column, for the prompts of a data file. */
async function answersOf(source: string): Promise<Map<string, string>> {
  const { prompts } = await loadPrompts(source, { templated: false });
  const answers = new Map<string, string>();
  for (const { value } of prompts)
    if (typeof value.columns.answer === 'string') answers.set(promptText(value.prompt).trim(), value.columns.answer);
  return answers;
}

/**
 * The table in the log and in the folder (report.md, report.json), the judge's score per policy as
 * a chart (judge.png), and as metrics.jsonl rows, one step per policy, for the charts view.
 */
function writeReport(evals: PolicyEval[], dir: string, emit: EmitEvent): void {
  const report = demoReport(evals);
  emit({ type: 'log', level: 'info', message: reportText(report) });
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, 'report.md'), [Buffer.from(reportMarkdown(report))]);
  writeFileAtomic(path.join(dir, 'report.json'), [Buffer.from(JSON.stringify(report, null, 2) + '\n')]);
  writeFileAtomic(path.join(dir, 'judge.png'), [demoPlot(report)]);
  const log = new MetricsLog(dir);
  report.rows.forEach((r, i) =>
    log.append('judge', i, {
      'judge/score': r.judge,
      'judge/score_low': r.judgeInterval.low,
      'judge/score_high': r.judgeInterval.high,
      'judge/correct': r.correct / r.prompts,
      'judge/mean_reward': r.meanReward,
      'judge/kl': r.kl,
    }),
  );
  emit({
    type: 'log',
    level: 'info',
    message: `report, chart and metrics in ${dir} (steps 0-3: ${report.rows.map((r) => r.policy).join(', ')})`,
  });
}

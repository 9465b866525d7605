/**
 * The whole RLHF pipeline on the bundled demo data, headless: SFT → comparison candidates →
 * labels → reward model → PPO, then the SFT and PPO policies side by side under the reward model.
 * A documented rule stands in for the person who labels: an annotator who knows the demo world's
 * facts (the SFT data's answers) and prefers the answer closer to them.
 */
import * as path from 'path';
import { givesReference, labelQueue, referenceAnnotator } from '../data/annotators';
import { experimentCandidates, generateCandidates } from './comparisons';
import { readReferences } from '../data/sft';
import { gpt2Tokenizer } from '../model/tokenizer';
import { EmitEvent, SampleRow } from '../protocol/runner';
import { Rng } from '../util/rng';
import { Experiment } from '../experiment/config';
import { GREEDY } from './generate';
import { readPrompts, runPpo } from './ppo';
import { runRm } from './reward';
import { Scorer } from './scorer';
import { runSft } from './sft';
import { sampleFromCheckpoint } from './samples';

export interface DemoRun {
  experiment: Experiment;
  outputDir: string;
  emit: EmitEvent;
  signal?: AbortSignal;
}

export async function runDemo(run: DemoRun): Promise<void> {
  const { experiment: exp, outputDir, emit, signal } = run;
  if (!exp.sft || !exp.comparisons || !exp.rm || !exp.ppo)
    throw new Error('the demo experiment needs "sft", "comparisons", "rm" and "ppo" sections');
  const step = (message: string) => emit({ type: 'log', level: 'info', message: `\n== ${message}` });
  const stage = (name: string) => path.join(outputDir, name);

  step('1/5 supervised fine-tuning');
  const sft = await runSft({ experiment: exp, outputDir: stage('sft'), emit, signal });
  if (sft.stopped) return;

  step('2/5 sampling pairs of responses to compare');
  const queue = stage('comparisons.jsonl');
  const candidates = await generateCandidates({ ...experimentCandidates(exp, sft.modelDir, queue), signal });
  emit({
    type: 'log',
    level: 'info',
    message: `${candidates.pairs} pairs from ${candidates.sampled} prompts in ${queue}`,
  });
  if (candidates.stopped) return;

  step("3/5 labeling them: the stand-in annotator prefers the answer closer to the demo data's fact");
  const preferences = stage('preferences.jsonl');
  const references = await readReferences(exp.sft.data, exp.sft.columns);
  const { counts } = await labelQueue(queue, preferences, referenceAnnotator(references, 'demo:reference'));
  emit({
    type: 'log',
    level: 'info',
    message: `labels: ${Object.entries(counts)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  });

  step('4/5 training the reward model');
  const rm = await runRm({
    experiment: { ...exp, rm: { ...exp.rm, data: preferences, model: sft.modelDir } },
    outputDir: stage('rm'),
    emit,
    signal,
  });
  if (rm.stopped) return;

  step('5/5 PPO against the reward model');
  const ppo = await runPpo({
    experiment: { ...exp, ppo: { ...exp.ppo, sft_model: sft.modelDir, reward_model: rm.modelDir } },
    outputDir: stage('ppo'),
    emit,
    signal,
  });
  if (ppo.stopped) return;

  step('before and after: greedy answers of the SFT and PPO policies, scored by the reward model');
  await compareModels(exp, sft.modelDir, ppo.modelDir, rm.modelDir, references, emit);
}

/** Greedy answers of both policies to every prompt, scored by the reward model. */
export async function compareModels(
  exp: Experiment,
  sftDir: string,
  ppoDir: string,
  rmDir: string,
  references: Map<string, string[]>,
  emit: EmitEvent,
): Promise<void> {
  const tokenizer = gpt2Tokenizer();
  const prompts = (await readPrompts(exp.ppo!.prompts, tokenizer, tokenizer.chat(), exp.ppo!.columns)).prompts.map(
    (p) => p.text,
  );
  const runtime = { provider: exp.runtime.provider, threads: exp.runtime.threads };
  const scorer = await Scorer.load(rmDir, runtime);
  const answers = async (dir: string) => {
    const rows = await sampleFromCheckpoint(
      dir,
      prompts,
      new Rng(exp.seed),
      { ...GREEDY, maxNewTokens: exp.ppo!.response_length },
      runtime,
    );
    const scores = await scorer.scoreTexts(rows);
    return rows.map((r, i): SampleRow => ({ ...r, score: scores[i] }));
  };
  const before = await answers(sftDir),
    after = await answers(ppoDir);
  await scorer.release();
  const mean = (rows: SampleRow[]) => rows.reduce((a, r) => a + r.score!, 0) / rows.length;
  const known = (rows: SampleRow[]) => rows.filter((r) => references.has(r.prompt.trim()));
  const right = (rows: SampleRow[]) => rows.filter((r) => givesReference(references, r.prompt, r.response)).length;
  emit({ type: 'samples', stage: 'sft', step: 0, rows: before.slice(0, 8) });
  emit({ type: 'samples', stage: 'ppo', step: 0, rows: after.slice(0, 8) });
  emit({
    type: 'log',
    level: 'info',
    message:
      `mean reward over ${prompts.length} prompts: SFT ${mean(before).toFixed(3)} → PPO ${mean(after).toFixed(3)}; ` +
      `right answers to the ${known(before).length} prompts the annotator knows: ${right(before)} → ${right(after)}`,
  });
}

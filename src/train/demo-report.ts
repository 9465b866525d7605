/**
 * The demo's before/after table: per policy the judge's score on the held-out prompts with its 95 %
 * Wilson interval, the correct answers, the reward model's mean score and the KL to the SFT policy,
 * then a few answers side by side. Written as text for the log, and as report.md and report.json
 * in the run folder.
 */
import { JUDGE_RULE } from '../data/judge';
import { PolicyEval } from './demo-eval';

/** z for a two-sided 95 % interval. */
const Z95 = 1.959964;

export interface Interval {
  low: number;
  high: number;
}

/** Wilson's score interval for k successes in n trials (Wilson 1927), at 95 %. */
export function wilsonInterval(k: number, n: number, z = Z95): Interval {
  if (n === 0) return { low: 0, high: 1 };
  const p = k / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/** One policy's row of the table. */
export interface ReportRow {
  policy: string;
  judge: number;
  judgeInterval: Interval;
  /** Whether the judge's interval lies wholly above the SFT policy's. */
  beatsSft: boolean;
  passed: number;
  correct: number;
  prompts: number;
  meanReward: number;
  kl: number;
}

export interface DemoReport {
  rule: string;
  rows: ReportRow[];
  /** For each of the first few prompts, every policy's answer. */
  samples: { prompt: string; answers: Record<string, string> }[];
}

/** The report of evaluations whose first is the SFT policy. */
export function demoReport(evals: readonly PolicyEval[], sampleCount = 6): DemoReport {
  const rows = evals.map((e) => ({
    policy: e.policy,
    judge: e.passed / e.prompts,
    judgeInterval: wilsonInterval(e.passed, e.prompts),
    beatsSft: false,
    passed: e.passed,
    correct: e.correct,
    prompts: e.prompts,
    meanReward: e.meanReward,
    kl: e.kl,
  }));
  for (const row of rows.slice(1)) row.beatsSft = row.judgeInterval.low > rows[0].judgeInterval.high;
  const samples = evals[0].answers.slice(0, sampleCount).map((a, i) => ({
    prompt: a.prompt,
    answers: Object.fromEntries(evals.map((e) => [e.policy, e.answers[i].response.trim()])),
  }));
  return { rule: JUDGE_RULE, rows, samples };
}

const percent = (x: number) => `${(100 * x).toFixed(0)} %`;

function tableCells(row: ReportRow): string[] {
  const { low, high } = row.judgeInterval;
  return [
    row.policy,
    `${percent(row.judge)} [${percent(low)}, ${percent(high)}]${row.beatsSft ? ' ▲' : ''}`,
    `${row.correct}/${row.prompts}`,
    row.meanReward.toFixed(3),
    row.kl.toFixed(2),
  ];
}

const HEADERS = ['policy', 'judge (95 % CI)', 'correct', 'mean reward', 'KL to SFT'];

/** The table and the samples as Markdown. */
export function reportMarkdown(report: DemoReport): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const policies = report.rows.map((r) => r.policy);
  return [
    `Held-out prompts: ${report.rows[0].prompts}. The judge's rule: ${report.rule}. ` +
      '▲: the interval lies wholly above the SFT policy’s.',
    '',
    line(HEADERS),
    line(HEADERS.map(() => '---')),
    ...report.rows.map((r) => line(tableCells(r))),
    '',
    line(['prompt', ...policies]),
    line(['---', ...policies.map(() => '---')]),
    ...report.samples.map((s) => line([s.prompt, ...policies.map((p) => s.answers[p] || '(nothing)')].map(escapeCell))),
    '',
  ].join('\n');
}

const escapeCell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The table as aligned text for the log, then each sample prompt with every policy's answer. */
export function reportText(report: DemoReport): string {
  const cells = [HEADERS, ...report.rows.map(tableCells)];
  const widths = HEADERS.map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  const table = cells.map((r) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]))
      .join('  ')
      .trimEnd(),
  );
  const width = Math.max(...report.rows.map((r) => r.policy.length));
  const samples = report.samples.flatMap((s) => [
    `  ${s.prompt}`,
    ...Object.entries(s.answers).map(([policy, answer]) => `    ${policy.padEnd(width)} → ${answer || '(nothing)'}`),
  ]);
  return [
    `the judge (${report.rule}) on ${report.rows[0].prompts} held-out prompts; ▲: interval wholly above SFT's`,
    ...table,
    'answers side by side:',
    ...samples,
  ].join('\n');
}

/**
 * The run's TensorBoard event file, beside metrics.jsonl: the same scalars under the same names, and
 * the sample tables as text, so `tensorboard --logdir .rlhf/runs` shows every run. A resumed run
 * starts a new file whose first event tells TensorBoard to drop the steps after the resume point.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SampleRow } from '../protocol/runner';
import { TfEvent, encodeEvent } from '../util/tfevents';

export class TensorBoardLog {
  private readonly file: string;

  constructor(dir: string, resumeStep = 0) {
    const now = Date.now() / 1000;
    this.file = freshName(path.join(dir, `events.out.tfevents.${Math.floor(now)}.${os.hostname()}.${process.pid}`));
    this.write({ wallTime: now, step: 0, fileVersion: 'brain.Event:2' });
    if (resumeStep > 0) this.write({ wallTime: now, step: resumeStep, sessionStart: true });
  }

  /** Non-finite values are written as they are: TensorBoard shows NaN and ±Inf. */
  scalars(step: number, time: number, values: Record<string, number>): void {
    this.write({ wallTime: time, step, scalars: values });
  }

  samples(step: number, rows: SampleRow[]): void {
    this.write({ wallTime: Date.now() / 1000, step, texts: { samples: samplesMarkdown(rows) } });
  }

  private write(event: TfEvent): void {
    fs.appendFileSync(this.file, encodeEvent(event));
  }
}

/** `base`, or base.1, base.2 … where a file of that name exists (a resume within the same second). */
function freshName(base: string): string {
  let name = base;
  for (let n = 1; fs.existsSync(name); n++) name = `${base}.${n}`;
  return name;
}

/** A sample table as Markdown, TensorBoard's text format (cells with their pipes and newlines escaped). */
export function samplesMarkdown(rows: SampleRow[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
  const number = (n: number | undefined) => (n === undefined ? '' : n.toFixed(4));
  return [
    '| prompt | response | score | kl |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${cell(r.prompt)} | ${cell(r.response)} | ${number(r.score)} | ${number(r.kl)} |`),
  ].join('\n');
}

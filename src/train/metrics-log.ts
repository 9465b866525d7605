/**
 * The run's metrics.jsonl: one JSON object per logged step ({stage, step, time, ...values}),
 * appended as training goes. On resume, rows past the resume step (logged before a crash or stop)
 * are dropped so the file again describes one continuous run. Beside it, samples.jsonl keeps the
 * sample tables the run showed, one row per line with its step, and a TensorBoard event file both.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SampleRow } from '../protocol/runner';
import { TensorBoardLog } from './tensorboard';

export class MetricsLog {
  private readonly file: string;
  private readonly tensorboard: TensorBoardLog;

  constructor(
    private readonly dir: string,
    resumeStep = 0,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, 'metrics.jsonl');
    if (resumeStep > 0 && fs.existsSync(this.file)) keepUpTo(this.file, resumeStep);
    this.tensorboard = new TensorBoardLog(dir, resumeStep);
  }

  /** Logs a step's values; returns the row's time (seconds since the epoch) for the live event. */
  append(stage: string, step: number, values: Record<string, number>): number {
    const time = Date.now() / 1000;
    fs.appendFileSync(this.file, `${JSON.stringify({ stage, step, time, ...values })}\n`);
    this.tensorboard.scalars(step, time, values);
    return time;
  }

  /** Logs a sample table (the charts panel shows it for finished runs too). */
  samples(step: number, rows: SampleRow[]): void {
    fs.appendFileSync(
      path.join(this.dir, 'samples.jsonl'),
      rows.map((r) => `${JSON.stringify({ step, ...r })}\n`).join(''),
    );
    this.tensorboard.samples(step, rows);
  }
}

/** Drops the rows of a metrics.jsonl past `step`, and a torn last line from a crash. */
function keepUpTo(file: string, step: number): void {
  const kept = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        return (JSON.parse(line) as { step: number }).step <= step;
      } catch {
        return false;
      }
    });
  fs.writeFileSync(`${file}.tmp`, kept.map((l) => `${l}\n`).join(''));
  fs.renameSync(`${file}.tmp`, file);
}

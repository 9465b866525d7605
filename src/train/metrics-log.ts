/**
 * The run's metrics.jsonl: one JSON object per logged step ({stage, step, time, ...values}),
 * appended as training goes. On resume, rows past the resume step (logged before a crash or stop)
 * are dropped so the file again describes one continuous run. Beside it, samples.jsonl keeps the
 * sample tables the run showed, one row per line with its step.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SampleRow } from '../protocol/runner';

export class MetricsLog {
  constructor(
    private readonly file: string,
    resumeStep = 0,
  ) {
    if (resumeStep > 0 && fs.existsSync(file)) {
      const kept = fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => {
          if (!line.trim()) return false;
          try {
            return (JSON.parse(line) as { step: number }).step <= resumeStep;
          } catch {
            return false; // a torn last line from a crash
          }
        });
      fs.writeFileSync(`${file}.tmp`, kept.map((l) => `${l}\n`).join(''));
      fs.renameSync(`${file}.tmp`, file);
    }
  }

  /** Logs a step's values; returns the row's time (seconds since the epoch) for the live event. */
  append(stage: string, step: number, values: Record<string, number>): number {
    const time = Date.now() / 1000;
    fs.appendFileSync(this.file, `${JSON.stringify({ stage, step, time, ...values })}\n`);
    return time;
  }
}

/** Appends a sample table to the run's samples.jsonl (the charts panel shows it for finished runs too). */
export function appendSamples(outputDir: string, step: number, rows: SampleRow[]): void {
  fs.mkdirSync(outputDir, { recursive: true });
  fs.appendFileSync(
    path.join(outputDir, 'samples.jsonl'),
    rows.map((r) => `${JSON.stringify({ step, ...r })}\n`).join(''),
  );
}

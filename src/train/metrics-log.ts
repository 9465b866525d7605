/**
 * The run's metrics.jsonl: one JSON object per logged step ({stage, step, time, ...values}),
 * appended as training goes. On resume, rows past the resume step (logged before a crash or stop)
 * are dropped so the file again describes one continuous run.
 */
import * as fs from 'fs';

export class MetricsLog {
  constructor(private readonly file: string, resumeStep = 0) {
    if (resumeStep > 0 && fs.existsSync(file)) {
      const kept = fs.readFileSync(file, 'utf8').split('\n').filter((line) => {
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

  append(stage: string, step: number, values: Record<string, number>): void {
    fs.appendFileSync(this.file, `${JSON.stringify({ stage, step, time: Date.now() / 1000, ...values })}\n`);
  }
}

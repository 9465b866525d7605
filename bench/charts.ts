/**
 * How the charts panel copes with long runs: a PPO run of 100k logged iterations (13 metrics).
 * Host: reading metrics.jsonl into a buffer and the full-buffer message a reopened panel gets.
 * Page (Chromium, production CSP): drawing that buffer, then live appends one iteration at a time,
 * from the message leaving the host to the frame that shows it.
 *
 *   tsx bench/charts.ts [--points 100000] [--appends 100]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { RunBuffer } from '../src/views/charts/runBuffer';
import { closeBrowser, noBrowser, openWebview } from '../test/browser/page';

const flag = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const POINTS = flag('points', 100_000);
const APPENDS = flag('appends', 100);
const METRICS = ['objective/scores', 'objective/rlhf_reward', 'objective/kl', 'objective/entropy', 'loss/policy_avg', 'loss/value_avg', 'policy/clipfrac_avg', 'policy/approxkl_avg', 'val/ratio', 'val/ratio_var', 'tokens_per_second', 'episode', 'lr'];

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const ms = (x: number) => `${x.toFixed(1)} ms`;

function row(step: number): Record<string, number> {
  return Object.fromEntries(METRICS.map((m, i) => [m, m === 'episode' ? step * 8 : Math.sin(step / (50 + i)) + Math.random() * 0.1]));
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'charts-bench-'));
  const lines: string[] = [];
  for (let step = 1; step <= POINTS; step++) lines.push(JSON.stringify({ stage: 'ppo', step, time: 1.7e9 + step, ...row(step) }));
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');

  let started = performance.now();
  const buffer = RunBuffer.fromFolder(dir);
  console.log(`host: metrics.jsonl of ${POINTS} rows × ${METRICS.length} metrics read into the buffer in ${ms(performance.now() - started)}`);
  started = performance.now();
  const full = buffer.points(0);
  structuredClone(full); // what postMessage does with it
  const bytes = [full.steps, full.times, ...Object.values(full.values)].reduce((n, c) => n + c.byteLength, 0);
  console.log(`host: full-buffer message built and copied in ${ms(performance.now() - started)} (${(bytes / 1e6).toFixed(1)} MB of Float64Array columns)`);
  fs.rmSync(dir, { recursive: true });

  if (noBrowser) {
    console.log(`page: skipped (${noBrowser})`);
    return;
  }
  const w = await openWebview('charts', { styles: ['uPlot.min.css'], width: 1600, height: 1000 });
  const run = full.run;
  const shown = (n: number) => w.page.waitForFunction((count) => document.querySelector('[data-chart="objective/kl"]')?.getAttribute('data-points') === String(count), n, { polling: 'raf' });
  await w.send({ type: 'runs', runs: [{ key: run, name: 'bench', stage: 'ppo', status: 'running' }] });
  started = performance.now();
  await w.send(full);
  await shown(POINTS);
  console.log(`page: ${POINTS} points per series, 9 charts, received and first drawn in ${ms(performance.now() - started)}`);

  const latencies: number[] = [];
  for (let i = 1; i <= APPENDS; i++) {
    const step = POINTS + i;
    const message = { ...buffer.addMetrics(step, 1.7e9 + step, row(step))! };
    started = performance.now();
    await w.send(message);
    await shown(POINTS + i);
    latencies.push(performance.now() - started);
  }
  console.log(`page: live append of one iteration to ${POINTS}-point series, until drawn: median ${ms(percentile(latencies, 0.5))}, p95 ${ms(percentile(latencies, 0.95))} (${APPENDS} appends)`);

  const frames = await w.page.evaluate(async () => {
    const times: number[] = [];
    const clock = self.performance; // not the Node import of the same name
    let last = clock.now();
    for (let i = 0; i < 60; i++) {
      await new Promise(requestAnimationFrame);
      const now = clock.now();
      times.push(now - last);
      last = now;
    }
    return times;
  });
  console.log(`page: idle frame interval with the charts drawn: median ${ms(percentile(frames, 0.5))}, p95 ${ms(percentile(frames, 0.95))}`);
  assertNoViolations(await w.cspViolations());
  await w.close();
  await closeBrowser();
}

function assertNoViolations(violations: string[]): void {
  if (violations.length) throw new Error(`CSP violations: ${violations.join('; ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

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
const METRICS = [
  'objective/scores',
  'objective/rlhf_reward',
  'objective/kl',
  'objective/entropy',
  'loss/policy_avg',
  'loss/value_avg',
  'policy/clipfrac_avg',
  'policy/approxkl_avg',
  'val/ratio',
  'val/ratio_var',
  'tokens_per_second',
  'episode',
  'lr',
];

const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const ms = (x: number) => `${x.toFixed(1)} ms`;

function row(step: number): Record<string, number> {
  return Object.fromEntries(
    METRICS.map((m, i) => [m, m === 'episode' ? step * 8 : Math.sin(step / (50 + i)) + Math.random() * 0.1]),
  );
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'charts-bench-'));
  const lines: string[] = [];
  for (let step = 1; step <= POINTS; step++)
    lines.push(JSON.stringify({ stage: 'ppo', step, time: 1.7e9 + step, ...row(step) }));
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');

  let started = performance.now();
  const buffer = RunBuffer.fromFolder(dir);
  console.log(
    `host: metrics.jsonl of ${POINTS} rows × ${METRICS.length} metrics read into the buffer in ${ms(performance.now() - started)}`,
  );
  started = performance.now();
  const full = buffer.points(0);
  structuredClone(full); // what postMessage does with it
  const bytes = [full.steps, full.times, ...Object.values(full.values)].reduce((n, c) => n + c.byteLength, 0);
  console.log(
    `host: full-buffer message built and copied in ${ms(performance.now() - started)} (${(bytes / 1e6).toFixed(1)} MB of Float64Array columns)`,
  );
  fs.rmSync(dir, { recursive: true });

  if (noBrowser) {
    console.log(`page: skipped (${noBrowser})`);
    return;
  }
  const w = await openWebview('charts', { styles: ['uPlot.min.css'], width: 1600, height: 1000 });
  const run = full.run;
  const shown = (n: number) =>
    w.page.waitForFunction(
      (count) => document.querySelector('[data-chart="objective/kl"]')?.getAttribute('data-points') === String(count),
      n,
      { polling: 'raf' },
    );
  await w.send({ type: 'runs', runs: [{ key: run, name: 'bench', stage: 'ppo', status: 'running' }] });
  await w.page.evaluate(() => {
    // In the page: when each message arrived, and when the frame that drew it had drawn (after uPlot's own microtasks).
    const w = window as unknown as { __arrived: number[]; __drawn: number[] };
    w.__arrived = [];
    w.__drawn = [];
    addEventListener('message', () => w.__arrived.push(self.performance.now()), { capture: true });
    new MutationObserver(() => queueMicrotask(() => w.__drawn.push(self.performance.now()))).observe(document.body, {
      subtree: true,
      attributeFilter: ['data-points'],
    });
  });
  const inPage = () =>
    w.page.evaluate(() => {
      const w = window as unknown as { __arrived: number[]; __drawn: number[] };
      return w.__drawn.at(-1)! - w.__arrived.at(-1)!;
    });
  started = performance.now();
  await w.send(full);
  const sent = performance.now() - started;
  await shown(POINTS);
  console.log(
    `page: ${POINTS} points per series, 9 charts, received and first drawn in ${ms(performance.now() - started)} (of which the test harness's transfer ${ms(sent)}; in the page from arrival ${ms(await inPage())})`,
  );

  const latencies: number[] = [];
  const inPageLatencies: number[] = [];
  await w.page.evaluate(recordFrames);
  for (let i = 1; i <= APPENDS; i++) {
    const step = POINTS + i;
    const message = { ...buffer.addMetrics(step, 1.7e9 + step, row(step))! };
    started = performance.now();
    await w.send(message);
    await shown(POINTS + i);
    latencies.push(performance.now() - started);
    inPageLatencies.push(await inPage());
  }
  const streaming = await w.page.evaluate(stopFrames);
  console.log(
    `page: live append of one iteration to ${POINTS}-point series, until drawn: median ${ms(percentile(latencies, 0.5))}, p95 ${ms(percentile(latencies, 0.95))}; in the page from arrival: median ${ms(percentile(inPageLatencies, 0.5))}, p95 ${ms(percentile(inPageLatencies, 0.95))} (${APPENDS} appends)`,
  );
  console.log(
    `page: frame interval while streaming: median ${ms(percentile(streaming, 0.5))}, p95 ${ms(percentile(streaming, 0.95))}`,
  );

  await w.page.evaluate(recordFrames);
  await w.page.waitForTimeout(1000);
  const frames = await w.page.evaluate(stopFrames);
  console.log(
    `page: idle frame interval with the charts drawn: median ${ms(percentile(frames, 0.5))}, p95 ${ms(percentile(frames, 0.95))}`,
  );
  assertNoViolations(await w.cspViolations());
  await w.close();
  await closeBrowser();
}

/** In the page: starts recording the interval between animation frames. */
function recordFrames(): void {
  const w = window as unknown as { __frames: number[]; __recording: boolean };
  const clock = self.performance; // not the Node import of the same name
  w.__frames = [];
  w.__recording = true;
  let last = clock.now();
  const tick = (now: number) => {
    w.__frames.push(now - last);
    last = now;
    if (w.__recording) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

function stopFrames(): number[] {
  const w = window as unknown as { __frames: number[]; __recording: boolean };
  w.__recording = false;
  return w.__frames.slice(1);
}

function assertNoViolations(violations: string[]): void {
  if (violations.length) throw new Error(`CSP violations: ${violations.join('; ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

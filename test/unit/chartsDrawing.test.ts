/**
 * The charts page's incremental paths in plain Node: smoothing carried on from where it stopped
 * must equal smoothing from scratch, and decimation must keep every bucket's lowest and highest
 * point (a spike hidden by decimation would hide reward hacking or a KL blow-up).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decimator, nearestPoint, pickPoints } from '../../webview-ui/charts/decimate';
import { SmoothedLine } from '../../webview-ui/charts/smoothing';
import { RunData } from '../../webview-ui/charts/store';

/** Seeded noise, so failures repeat. */
function noise(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5;
}

function newRun(): RunData {
  return new RunData({ key: '/runs/a', name: 'a', stage: 'ppo', status: 'running' });
}

/** Replaces the run's points from `from` on with these steps and values (NaN: none). */
function apply(run: RunData, from: number, steps: number[], values: Record<string, number[]>): void {
  const column = (v: number[]) => Float64Array.from(v);
  run.apply({
    type: 'points',
    run: run.run.key,
    from,
    steps: column(steps),
    times: column(steps.map((s) => 1000 + s)),
    values: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, column(v)])),
  });
}

/** TensorBoard's debiased EMA as TensorBoard writes it. */
function reference(values: number[], weight: number): number[] {
  let last = 0,
    count = 0;
  return values.map((v) => {
    if (Number.isNaN(v)) return NaN;
    last = last * weight + (1 - weight) * v;
    count++;
    return weight === 0 ? v : last / (1 - Math.pow(weight, count));
  });
}

function fromScratch(run: RunData, metric: string, weight: number): Float64Array {
  const line = new SmoothedLine(run, metric);
  line.update(weight, 'step', run.steps.values);
  return line.values.slice(0, run.length);
}

test('smoothing carried on point by point equals smoothing from scratch: appends, a step that gets more values, a resume from the middle', () => {
  const random = noise(3);
  const run = newRun();
  const live = new SmoothedLine(run, 'loss');
  const expected: number[] = [];
  const check = (what: string) => {
    live.update(0.9, 'step', run.steps.values);
    assert.deepEqual(live.values.slice(0, run.length), fromScratch(run, 'loss', 0.9), what);
    const smoothed = reference(expected, 0.9);
    live.values
      .slice(0, run.length)
      .forEach((v, i) =>
        assert.ok(
          Object.is(v, smoothed[i]) || Math.abs(v - smoothed[i]) <= 1e-12 * Math.abs(smoothed[i]),
          `${what}: point ${i}`,
        ),
      );
  };
  for (let step = 1; step <= 3000; step++) {
    // Every 7th step has no loss (a gap), every 50th is drawn once for training and again with its eval values.
    const value = step % 7 === 0 ? NaN : random() * 10;
    expected[step - 1] = value;
    apply(run, step - 1, [step], { loss: [value] });
    if (step % 50 === 0) {
      check(`before step ${step} got more values`);
      apply(run, step - 1, [step], { loss: [value], eval_loss: [1] });
    }
    if (step % 500 === 0) check(`after ${step} appends`);
  }
  const resumed = Array.from({ length: 200 }, () => random() * 100);
  expected.splice(1000, Infinity, ...resumed);
  apply(
    run,
    1000,
    resumed.map((_, i) => 1001 + i),
    { loss: resumed },
  );
  check('after a resume from step 1000');
  assert.equal(live.points(false), expected.filter((v) => !Number.isNaN(v)).length);
  assert.equal(live.points(true), expected.filter((v) => v > 0).length);
});

test('smoothing on the episode axis skips the points that have no episode, as the chart does', () => {
  const run = newRun();
  apply(run, 0, [1, 2, 3, 4], { loss: [1, 2, 3, 4], episode: [8, NaN, 24, 32] });
  const line = new SmoothedLine(run, 'loss');
  line.update(0.5, 'episode', run.metrics.get('episode')!.values);
  const smoothed = reference([1, 3, 4], 0.5);
  assert.deepEqual(Array.from(line.values.slice(0, 4)), [smoothed[0], NaN, smoothed[1], smoothed[2]]);
  assert.equal(line.points(false), 3);
});

/** 100k points of noise with spikes up and down at random places. */
function spiky(length: number, seed: number) {
  const random = noise(seed);
  const x = Float64Array.from({ length }, (_, i) => i + 1);
  const values = Float64Array.from({ length }, () => random());
  const spikes: number[] = [];
  for (let n = 0; n < 20; n++) {
    const i = Math.floor((random() + 0.5) * length);
    values[i] = n % 2 ? 1000 : -1000;
    spikes.push(i);
  }
  return { x, values, spikes };
}

test("decimating a range for its pixel columns keeps each column's lowest and highest point of every series", () => {
  const { x, values } = spiky(100_000, 5);
  const other = spiky(100_000, 6).values;
  const columns = 400,
    range = { min: 20_000.5, max: 60_000.5 };
  const picked = pickPoints(x, x.length, [values, other], -Infinity, columns, range);
  assert.ok(picked.length <= columns * 4 + 4, `${picked.length} points drawn`);
  assert.deepEqual(
    picked,
    [...picked].sort((a, b) => a - b),
    'ascending',
  );
  assert.equal(x[picked[0]], 20_000, 'the point before the range');
  assert.equal(x[picked.at(-1)!], 60_001, 'the point after it');
  assert.deepEqual(
    pickPoints(x, x.length, [values], -Infinity, columns, { min: 1, max: 800 }),
    Array.from({ length: 801 }, (_, i) => i),
    'few points are drawn in full',
  );
  const chosen = new Set(picked);
  const scale = columns / (range.max - range.min);
  for (const series of [values, other]) {
    const low = new Map<number, number>(),
      high = new Map<number, number>();
    for (let i = 0; i < x.length; i++) {
      if (x[i] < range.min || x[i] > range.max) continue;
      const c = Math.min(columns - 1, Math.floor((x[i] - range.min) * scale));
      if (!low.has(c) || series[i] < series[low.get(c)!]) low.set(c, i);
      if (!high.has(c) || series[i] > series[high.get(c)!]) high.set(c, i);
    }
    for (const [c, i] of [...low, ...high]) assert.ok(chosen.has(i), `column ${c}: point ${i} (${series[i]}) is drawn`);
  }
});

test('the whole-run decimation, kept up to date as points arrive, draws every spike and the same points as from scratch', () => {
  const { values, spikes } = spiky(100_000, 9);
  const run = newRun();
  const live = new Decimator(800, -Infinity);
  let picked: number[] = [];
  for (let from = 0; from < values.length;) {
    const to = Math.min(values.length, from + (from < 1000 ? 1 : 997));
    apply(
      run,
      from,
      Array.from({ length: to - from }, (_, i) => from + i + 1),
      { loss: Array.from(values.subarray(from, to)) },
    );
    picked = live.update(run, run.steps.values, [run.metrics.get('loss')!.values]);
    if (from % 5 === 0) {
      values[to - 1] *= 2; // the last step again, with another value
      apply(run, to - 1, [to], { loss: [values[to - 1]] });
      picked = live.update(run, run.steps.values, [run.metrics.get('loss')!.values]);
    }
    from = to;
  }
  assert.deepEqual(
    picked,
    new Decimator(800, -Infinity).update(run, run.steps.values, [run.metrics.get('loss')!.values]),
  );
  assert.ok(picked.length <= 2 * 800 + 2, `${picked.length} points drawn`);
  assert.equal(picked[0], 0);
  assert.equal(picked.at(-1), values.length - 1);
  for (const i of spikes) assert.ok(picked.includes(i), `spike at ${i}`);

  apply(run, 50_000, [50_001], { loss: [5000] }); // resumed from the middle: the rest is gone
  picked = live.update(run, run.steps.values, [run.metrics.get('loss')!.values]);
  assert.equal(picked.at(-1), 50_000);
  assert.ok(picked.every((i) => i <= 50_000));
  assert.deepEqual(
    picked,
    new Decimator(800, -Infinity).update(run, run.steps.values, [run.metrics.get('loss')!.values]),
  );
});

test('on a log scale the lowest positive point of a bucket is kept, not a value the scale cannot show', () => {
  const run = newRun();
  const loss = Array.from({ length: 10_000 }, (_, i) => (i % 2 ? -1 : 1 + (i % 100)));
  loss[5000] = 1e-6;
  apply(
    run,
    0,
    loss.map((_, i) => i + 1),
    { loss },
  );
  const picked = new Decimator(100, 0).update(run, run.steps.values, [run.metrics.get('loss')!.values]);
  assert.ok(picked.includes(5000));
});

test('hover finds the nearest of all points, not only of those drawn', () => {
  const { x, values } = spiky(100_000, 13);
  const run = newRun();
  apply(run, 0, Array.from(x), { loss: Array.from(values) });
  const picked = new Decimator(300, -Infinity).update(run, run.steps.values, [run.metrics.get('loss')!.values]);
  assert.ok(picked.length < 1000);
  for (const target of [0, 1, 1.4, 2.6, 12_345.2, 54_321.7, 99_999.9, 100_000, 200_000]) {
    const expected = Math.min(100_000, Math.max(1, Math.round(target))) - 1;
    assert.equal(nearestPoint(x, picked, target), expected, `nearest to ${target}`);
  }
});

/**
 * The charts page in Chromium under the production CSP, fed a PPO metrics stream as the host sends
 * it (history, then live appends): the dashboard's series, smoothing against a reference
 * implementation, the CSV and PNG exports, compared runs, the samples table and restored state.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'events';
import * as path from 'path';
import { HostMessage } from '../../src/protocol/charts';
import { readImportedMetrics } from '../../src/runs/imported-metrics';
import { formatMetric } from '../../src/shared/format';
import { ChartsStream } from '../../src/views/charts/chartsStream';
import { closeBrowser, noBrowser, openWebview, WebviewPage } from './page';

after(closeBrowser);

const PPO_CHARTS = [
  'reward',
  'objective/kl',
  'objective/entropy',
  'loss/policy_avg',
  'loss/value_avg',
  'policy/clipfrac_avg',
  'policy/approxkl_avg',
  'val/ratio',
  'tokens_per_second',
];

/** A PPO run's logged iterations, shaped like src/train/ppo.ts's metrics (seeded, so repeatable). */
function ppoStream(iterations: number, seed: number, every = 1) {
  let s = seed;
  const noise = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5;
  const steps = Array.from({ length: iterations }, (_, i) => (i + 1) * every);
  const column = (f: (step: number) => number) => steps.map((step) => f(step));
  return {
    steps,
    times: column((step) => 1_700_000_000 + step * 1.5),
    values: {
      'objective/scores': column((t) => Math.log(t) + noise()),
      'objective/rlhf_reward': column((t) => Math.log(t) - 1 + noise()), // below zero early on
      'objective/kl': column((t) => (0.02 * t) / every + Math.abs(noise())),
      'objective/entropy': column(() => 30 + noise()),
      'loss/policy_avg': column(() => noise() / 10),
      'loss/value_avg': column(() => 0.5 + noise() / 10),
      'policy/clipfrac_avg': column(() => Math.abs(noise()) / 5),
      'policy/approxkl_avg': column(() => Math.abs(noise()) / 100),
      'val/ratio': column(() => 1 + noise() / 50),
      tokens_per_second: column(() => 400 + 50 * noise()),
      episode: column((t) => t * 8),
      lr: column(() => 1e-5),
      // A metric only some iterations log, like eval metrics.
      'val/num_eos_tokens': column((t) => (t % 3 === 0 ? 4 : NaN)).map((v) => (Number.isNaN(v) ? null : v)),
    } as Record<string, (number | null)[]>,
  };
}
type Stream = ReturnType<typeof ppoStream>;

/** A column as the host sends it: NaN where a step has no value. */
const column = (values: (number | null)[]) => Float64Array.from(values, (v) => v ?? NaN);

/** The stream's points from..to as one `points` message. */
function points(run: string, stream: Stream, from: number, to = stream.steps.length) {
  const values = Object.fromEntries(Object.entries(stream.values).map(([k, v]) => [k, column(v.slice(from, to))]));
  return {
    type: 'points',
    run,
    from,
    steps: column(stream.steps.slice(from, to)),
    times: column(stream.times.slice(from, to)),
    values,
  };
}

/** TensorBoard's debiased EMA, written as TensorBoard writes it (the page computes the debias weight another way). */
function referenceSmoothing(values: (number | null)[], weight: number): (number | null)[] {
  let last = 0;
  let count = 0;
  return values.map((v) => {
    if (v === null) return null;
    last = last * weight + (1 - weight) * v;
    count++;
    return weight === 0 ? v : last / (1 - Math.pow(weight, count));
  });
}

/** The CSV the page must export for a metric of these runs, smoothed values apart (compared numerically). */
function expectedCsv(runs: { name: string; stream: Stream }[], metric: string, weight: number) {
  const rows: string[][] = [];
  const smoothed: number[] = [];
  for (const { name, stream } of runs) {
    const raw = stream.values[metric];
    const reference = referenceSmoothing(raw, weight);
    raw.forEach((v, i) => {
      if (v === null) return;
      rows.push([name, metric, String(stream.steps[i]), String(stream.times[i]), String(v)]);
      smoothed.push(reference[i]!);
    });
  }
  return { rows, smoothed };
}

function assertCsv(csv: string, expected: ReturnType<typeof expectedCsv>) {
  const [header, ...lines] = csv.trimEnd().split('\n');
  assert.equal(header, 'run,metric,step,time,value,smoothed');
  assert.deepEqual(
    lines.map((l) => l.split(',').slice(0, 5)),
    expected.rows,
  );
  lines.forEach((l, i) => {
    const got = Number(l.split(',')[5]);
    assert.ok(
      Math.abs(got - expected.smoothed[i]) <= 1e-12 * Math.max(1, Math.abs(expected.smoothed[i])),
      `row ${i + 1}: smoothed ${got}, reference ${expected.smoothed[i]}`,
    );
  });
}

const chart = (w: WebviewPage, title: string) => w.page.locator(`[data-testid="chart"][data-chart="${title}"]`);

async function lastExport(w: WebviewPage) {
  const posted = (await w.posted()) as { type: string; format: string; fileName: string; data: string }[];
  const exported = posted.filter((m) => m.type === 'export');
  return exported.at(-1)!;
}

function pngSize(dataUrl: string): { width: number; height: number } {
  assert.match(dataUrl, /^data:image\/png;base64,/);
  const bytes = Buffer.from(dataUrl.slice(dataUrl.indexOf(',') + 1), 'base64');
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.equal(bytes.subarray(12, 16).toString('ascii'), 'IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

test(
  'a live PPO run: the dashboard series, hover values, smoothing, exports, log scale and samples',
  { skip: noBrowser },
  async () => {
    const w = await openWebview('charts', { styles: ['uPlot.min.css'], width: 1400, height: 900 });
    try {
      assert.deepEqual(await w.posted(), [{ type: 'ready' }]);
      const run = '/work/.rlhf/runs/ppo-a';
      const stream = ppoStream(60, 7);
      await w.send({ type: 'runs', runs: [{ key: run, name: 'ppo a', stage: 'ppo', status: 'running' }] });
      await w.send(points(run, stream, 0, 40)); // history
      for (let i = 40; i < 60; i++) await w.send(points(run, stream, i, i + 1)); // live, one iteration at a time
      await w.send({
        type: 'samples',
        run,
        groups: [10, 20].map((step) => ({
          step,
          rows: [
            { prompt: `What does a cat eat? (${step})`, response: 'Fish.', score: 1.5, kl: 0.2 },
            { prompt: 'Where does a penguin live?', response: 'Ice.', score: 0.5, kl: 0.1 },
          ],
        })),
      });
      await chart(w, 'objective/kl').and(w.page.locator('[data-points="60"]')).waitFor();

      const titles = await w.page
        .locator('[data-testid="chart"]')
        .evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.chart));
      assert.deepEqual(titles, PPO_CHARTS);
      for (const title of PPO_CHARTS) {
        const metrics = title === 'reward' ? ['objective/scores', 'objective/rlhf_reward'] : [title];
        const expected = metrics.reduce((n, m) => n + stream.values[m].filter((v) => v !== null).length, 0);
        // Charts in view are drawn a few per frame; the count is set when one is drawn.
        await chart(w, title)
          .and(w.page.locator(`[data-points="${expected}"]`))
          .waitFor({ timeout: 5000 });
      }
      const legend = await chart(w, 'reward').locator('.u-legend .u-label').allTextContents();
      assert.deepEqual(legend, [
        'step',
        'objective/scores',
        'objective/scores (raw)',
        'objective/rlhf_reward',
        'objective/rlhf_reward (raw)',
      ]);

      const over = chart(w, 'objective/kl').locator('.u-over');
      const box = (await over.boundingBox())!;
      await w.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      const hovered = await chart(w, 'objective/kl')
        .locator('.u-legend .u-series')
        .nth(1)
        .locator('.u-value')
        .textContent();
      assert.match(hovered ?? '', /^-?\d/, 'hovering shows the value under the cursor');

      await chart(w, 'objective/kl').getByRole('button', { name: 'CSV' }).click();
      let exported = await lastExport(w);
      assert.equal(exported.fileName, 'objective/kl.csv');
      assertCsv(exported.data, expectedCsv([{ name: 'ppo a', stream }], 'objective/kl', 0.6));

      await w.page.locator('[data-testid="smoothing"]').fill('0.9');
      await w.page.locator('[data-testid="add-chart"]').selectOption('val/num_eos_tokens');
      await chart(w, 'val/num_eos_tokens').and(w.page.locator('[data-points="20"]')).waitFor();
      await chart(w, 'val/num_eos_tokens').getByRole('button', { name: 'CSV' }).click();
      assertCsv((await lastExport(w)).data, expectedCsv([{ name: 'ppo a', stream }], 'val/num_eos_tokens', 0.9));

      await chart(w, 'objective/kl').getByRole('button', { name: 'PNG' }).click();
      exported = await lastExport(w);
      assert.equal(exported.format, 'png');
      const canvas = await chart(w, 'objective/kl')
        .locator('canvas')
        .evaluate((c) => ({ width: (c as HTMLCanvasElement).width, height: (c as HTMLCanvasElement).height }));
      assert.ok(canvas.width > 300 && canvas.height > 100, JSON.stringify(canvas));
      const png = pngSize(exported.data);
      assert.equal(png.width, canvas.width);
      assert.ok(png.height > canvas.height + 20, 'the plot with a title above and a legend below');
      // Inked pixels (not the background) in the bands above and below the plot: the title and the legend.
      const band = Math.floor((png.height - canvas.height) * 0.4);
      const inked = await w.page.evaluate(
        async ({ url, band }) => {
          const image = new Image();
          image.src = url;
          await image.decode();
          const c = document.createElement('canvas');
          [c.width, c.height] = [image.width, image.height];
          const ctx = c.getContext('2d')!;
          ctx.drawImage(image, 0, 0);
          const background = ctx.getImageData(0, 0, 1, 1).data.join();
          const count = (top: number) => {
            const d = ctx.getImageData(0, top, c.width, band).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) if (d.slice(i, i + 4).join() !== background) n++;
            return n;
          };
          return { title: count(0), legend: count(c.height - band) };
        },
        { url: exported.data, band },
      );
      assert.ok(inked.title > 50 && inked.legend > 50, JSON.stringify(inked));

      // A log scale is per chart: the policy loss's drops its non-positive points, the reward keeps its own.
      const log = chart(w, 'loss/policy_avg').getByRole('button', { name: 'Log' });
      assert.equal(await log.getAttribute('aria-pressed'), 'false');
      await log.click();
      await log.and(w.page.locator('[aria-pressed="true"]')).waitFor(); // on the next frame
      const positive = stream.values['loss/policy_avg'].filter((v) => v !== null && v > 0).length;
      assert.ok(positive > 0 && positive < 60);
      await chart(w, 'loss/policy_avg')
        .and(w.page.locator(`[data-points="${positive}"]`))
        .waitFor();
      const rewards = ['objective/scores', 'objective/rlhf_reward'].reduce(
        (n, m) => n + stream.values[m].filter((v) => v !== null).length,
        0,
      );
      assert.ok(
        ['objective/scores', 'objective/rlhf_reward'].some((m) => stream.values[m].some((v) => v !== null && v <= 0)),
        'the reward has values a log scale would drop',
      );
      assert.equal(await chart(w, 'reward').getAttribute('data-points'), String(rewards));
      assert.equal(await chart(w, 'reward').getByRole('button', { name: 'Log' }).getAttribute('aria-pressed'), 'false');

      const samples = w.page.locator('[data-testid="sample"]');
      assert.equal(await samples.count(), 4);
      assert.deepEqual(await samples.first().locator('td').allTextContents(), [
        'ppo a',
        'PPO',
        '20',
        'What does a cat eat? (20)',
        'Fish.',
        '1.5000',
        '0.2000',
      ]);
      await w.page.locator('[data-testid="samples-search"]').fill('CAT');
      await w.page.waitForFunction(() => document.querySelectorAll('[data-testid="sample"]').length === 2);

      await w.send({ type: 'points', run, from: -1, steps: column([1]), times: column([1]), values: {} });
      await w.send({ type: 'points', run, from: 60, steps: column([61]), times: column([]), values: {} });
      await w.send({ type: 'points', run, from: 60, steps: [61], times: [1], values: {} });
      await w.page.waitForTimeout(50);
      assert.equal(
        await chart(w, 'objective/kl').getAttribute('data-points'),
        '60',
        'invalid messages from the host are dropped',
      );

      const state = (await w.state()) as Record<string, unknown>;
      assert.deepEqual(state, {
        runs: [run],
        smoothing: 0.9,
        xAxis: 'step',
        logScale: ['loss/policy_avg'],
        added: ['val/num_eos_tokens'],
        removed: [],
        search: 'CAT',
      });
      assert.deepEqual(await w.cspViolations(), []);
    } finally {
      await w.close();
    }
  },
);

test('a reloaded panel restores its settings and compares runs in one chart', { skip: noBrowser }, async () => {
  const [a, b] = ['/runs/a', '/runs/b'];
  const saved = {
    runs: [a, b],
    smoothing: 0.3,
    xAxis: 'time',
    logScale: ['lr'],
    added: ['lr'],
    removed: ['val/ratio'],
    search: '',
  };
  const w = await openWebview('charts', { styles: ['uPlot.min.css'], state: saved, width: 1400 });
  try {
    assert.equal(await w.page.locator('[data-testid="smoothing"]').inputValue(), '0.3');
    assert.equal(await w.page.locator('[data-testid="x-axis"]').inputValue(), 'time');
    const first = ppoStream(20, 1),
      second = ppoStream(15, 2, 2);
    await w.send({
      type: 'runs',
      runs: [
        { key: a, name: 'baseline', stage: 'ppo', status: 'finished' },
        { key: b, name: 'kl, 0.1', stage: 'ppo', status: 'running' },
      ],
    });
    await w.send(points(a, first, 0));
    await w.send(points(b, second, 0));
    await chart(w, 'objective/kl').and(w.page.locator('[data-points="35"]')).waitFor();

    const titles = await w.page
      .locator('[data-testid="chart"]')
      .evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.chart));
    assert.deepEqual(titles, [...PPO_CHARTS.filter((t) => t !== 'val/ratio'), 'lr']);
    assert.equal(await chart(w, 'lr').getByRole('button', { name: 'Log' }).getAttribute('aria-pressed'), 'true');
    const legend = await chart(w, 'objective/kl').locator('.u-legend .u-label').allTextContents();
    assert.deepEqual(legend, [
      'seconds',
      'baseline · objective/kl',
      'baseline · objective/kl (raw)',
      'kl, 0.1 · objective/kl',
      'kl, 0.1 · objective/kl (raw)',
    ]);

    await chart(w, 'objective/kl').getByRole('button', { name: 'CSV' }).click();
    const csv = (await lastExport(w)).data;
    assert.ok(csv.includes('\n"kl, 0.1",objective/kl,2,'), 'a name with a comma is quoted');
    assertCsv(
      csv.replace(/"kl, 0\.1"/g, 'KL'),
      expectedCsv(
        [
          { name: 'baseline', stream: first },
          { name: 'KL', stream: second },
        ],
        'objective/kl',
        0.3,
      ),
    );

    await w.page.locator('[data-testid="runs"] li').nth(1).getByRole('button').click();
    assert.deepEqual((await w.posted()).at(-1), { type: 'removeRun', run: b });
    await w.page.locator('[data-testid="pick-runs"]').click();
    assert.deepEqual((await w.posted()).at(-1), { type: 'pickRuns' });

    await w.send({ type: 'runs', runs: [{ key: a, name: 'baseline', stage: 'ppo', status: 'finished' }] });
    await chart(w, 'objective/kl').and(w.page.locator('[data-points="20"]')).waitFor();
    assert.deepEqual(((await w.state()) as { runs: string[] }).runs, [a]);
    assert.deepEqual(await w.cspViolations(), []);
  } finally {
    await w.close();
  }
});

test('a long run is drawn decimated, while hover, CSV and zoom read every point', { skip: noBrowser }, async () => {
  const w = await openWebview('charts', { styles: ['uPlot.min.css'], width: 1000, height: 800 });
  try {
    const run = '/runs/long';
    const stream = ppoStream(20_000, 11);
    await w.send({ type: 'runs', runs: [{ key: run, name: 'long', stage: 'ppo', status: 'running' }] });
    await w.send(points(run, stream, 0));
    const kl = chart(w, 'objective/kl');
    await kl.and(w.page.locator('[data-points="20000"]')).waitFor();
    const drawn = Number(await kl.getAttribute('data-drawn'));
    assert.ok(drawn > 100 && drawn < 5000, `${drawn} of 20000 points drawn`);

    const over = kl.locator('.u-over');
    const box = (await over.boundingBox())!;
    await w.page.mouse.move(box.x + box.width * 0.37, box.y + box.height / 2);
    const legend = kl.locator('.u-legend .u-series');
    const step = Number(await legend.nth(0).locator('.u-value').textContent());
    const stepsPerPixel = 20_000 / box.width;
    assert.ok(Math.abs(step - 0.37 * 20_000) <= 2 * stepsPerPixel, `hovered step ${step}, under the cursor`);
    const raw = await legend.nth(2).locator('.u-value').textContent();
    assert.equal(raw, formatMetric(stream.values['objective/kl'][step - 1]), `the raw value at step ${step}`);

    await kl.getByRole('button', { name: 'CSV' }).click();
    assertCsv((await lastExport(w)).data, expectedCsv([{ name: 'long', stream }], 'objective/kl', 0.6));

    await w.page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
    await w.page.mouse.down();
    await w.page.mouse.move(box.x + box.width * 0.42, box.y + box.height / 2, { steps: 4 });
    await w.page.mouse.up();
    await w.page.waitForFunction(
      () => Number(document.querySelector('[data-chart="objective/kl"]')?.getAttribute('data-drawn')) < 1000,
    );
    const zoomed = Number(await kl.getAttribute('data-drawn'));
    await w.page.mouse.dblclick(box.x + box.width / 2, box.y + box.height / 2);
    await w.page.waitForFunction(
      (n) => document.querySelector('[data-chart="objective/kl"]')?.getAttribute('data-drawn') === String(n),
      drawn,
    );
    assert.ok(zoomed > 50, `a zoom to 2% of the run draws its ${zoomed} points at full detail`);
    assert.deepEqual(await w.cspViolations(), []);
  } finally {
    await w.close();
  }
});

test(
  'charts tell the truth: eval and schedules unsmoothed, the legend shows the last value, whole steps, y labels that fit',
  { skip: noBrowser },
  async () => {
    const w = await openWebview('charts', { styles: ['uPlot.min.css'], width: 900, height: 900 });
    try {
      const run = '/runs/sft';
      const loss = [6.9, 6.5, 6.3];
      const evalLoss = [null, 6.7, 6.26];
      const lr = [0.00075, 0.0005, 0.00025];
      await w.send({ type: 'runs', runs: [{ key: run, name: 'sft', stage: 'sft', status: 'finished' }] });
      await w.send({
        type: 'points',
        run,
        from: 0,
        steps: column([1, 2, 3]),
        times: column([1_700_000_000, 1_700_000_001, 1_700_000_002]),
        values: { loss: column(loss), eval_loss: column(evalLoss), learning_rate: column(lr) },
      });
      await chart(w, 'eval_loss').and(w.page.locator('[data-points="2"]')).waitFor();
      await chart(w, 'learning_rate').and(w.page.locator('[data-points="3"]')).waitFor();
      const labels = (title: string) => chart(w, title).locator('.u-legend .u-label').allTextContents();
      const values = (title: string) => chart(w, title).locator('.u-legend .u-value').allTextContents();
      // The default smoothing (0.6) smooths the training loss only.
      assert.deepEqual(await labels('loss'), ['step', 'loss', 'loss (raw)']);
      assert.deepEqual(await labels('eval_loss'), ['step', 'eval_loss']);
      assert.deepEqual(await labels('learning_rate'), ['step', 'learning_rate']);
      // Without hovering, the legend reads the last values.
      assert.deepEqual(await values('eval_loss'), ['3', formatMetric(6.26)]);
      assert.deepEqual(await values('learning_rate'), ['3', formatMetric(0.00025)]);
      assert.equal((await values('loss'))[2], formatMetric(6.3));

      for (const title of ['eval_loss', 'learning_rate']) {
        const ticks = (await chart(w, title).getAttribute('data-x-ticks'))!.split(' ');
        assert.ok(ticks.length >= 2 && ticks.every((t) => /^\d+$/.test(t)), `${title}: whole steps (${ticks})`);
      }
      // The y axis is as wide as its longest label (0.00075 needs more than the old fixed 60 px with a title).
      const yTicks = (await chart(w, 'learning_rate').getAttribute('data-y-ticks'))!.split(' ');
      const fits = await chart(w, 'learning_rate').evaluate((card, ticks) => {
        const over = card.querySelector('.u-over')!.getBoundingClientRect();
        const wrap = card.querySelector('.u-wrap')!.getBoundingClientRect();
        const ctx = document.createElement('canvas').getContext('2d')!;
        ctx.font =
          '12px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif';
        const longest = Math.max(...ticks.map((t) => ctx.measureText(t).width));
        return { axis: over.left - wrap.left, longest };
      }, yTicks);
      assert.ok(
        yTicks.some((t) => t.length >= 6),
        `small learning rates (${yTicks})`,
      );
      assert.ok(fits.axis >= fits.longest + 30, JSON.stringify(fits));
      assert.deepEqual(await w.cspViolations(), []);
    } finally {
      await w.close();
    }
  },
);

test(
  'the samples table: the stage, "(empty)" for an empty response, runs on one line, and full width on demand',
  {
    skip: noBrowser,
  },
  async () => {
    const w = await openWebview('charts', { styles: ['uPlot.min.css'], width: 1400, height: 900 });
    try {
      const run = '/runs/demo';
      await w.send({ type: 'runs', runs: [{ key: run, name: 'demo PPO', stage: 'ppo', status: 'running' }] });
      await w.send({
        type: 'samples',
        run,
        groups: [{ step: 5, rows: [{ prompt: 'What does a cat eat?', response: ' ', score: 0.1, kl: 0 }] }],
      });
      const row = w.page.locator('[data-testid="sample"]').first();
      await row.waitFor();
      const cells = await row.locator('td').allTextContents();
      assert.deepEqual(cells.slice(0, 5), ['demo PPO', 'PPO', '5', 'What does a cat eat?', '(empty)']);
      const runCell = await row
        .locator('td')
        .first()
        .evaluate((td) => {
          const lineHeight = parseFloat(getComputedStyle(td).lineHeight) || 16;
          return { height: td.getBoundingClientRect().height, lineHeight };
        });
      assert.ok(
        runCell.height < 2 * runCell.lineHeight + 8,
        `the run's name stays on one line (${JSON.stringify(runCell)})`,
      );
      const width = () => w.page.locator('.samples').evaluate((e) => e.getBoundingClientRect().width);
      assert.ok((await width()) >= 360);
      await w.page.getByTestId('samples-wide').click();
      assert.ok((await width()) > 1300, 'full width');
      assert.deepEqual(await w.cspViolations(), []);
    } finally {
      await w.close();
    }
  },
);

test(
  "a transformers trainer_state.json opened from elsewhere renders as an SFT run's dashboard",
  { skip: noBrowser },
  async () => {
    const w = await openWebview('charts', { styles: ['uPlot.min.css'], width: 1400, height: 900 });
    try {
      const sent: HostMessage[] = [];
      const stream = new ChartsStream(Object.assign(new EventEmitter(), { runs: () => [] }) as never, {
        post: (m) => void sent.push(m),
        pickRuns: async () => undefined,
        save: async () => {},
        runsChanged: () => {},
        warn: () => {},
      });
      await stream.receive({ type: 'ready' });
      stream.addImported(readImportedMetrics(path.join(__dirname, '..', 'fixtures', 'trainer_state.json')));
      for (const message of sent) await w.send(message);
      await chart(w, 'loss').and(w.page.locator('[data-points="20"]')).waitFor();
      await chart(w, 'eval_loss').and(w.page.locator('[data-points="4"]')).waitFor();
      const titles = await w.page
        .locator('[data-testid="chart"]')
        .evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.chart));
      assert.deepEqual(titles, ['loss', 'eval_loss', 'learning_rate', 'grad_norm']);
      assert.match((await w.page.locator('[data-testid="runs"]').textContent()) ?? '', /fixtures\/trainer_state\.json/);
      stream.dispose();
      assert.deepEqual(await w.cspViolations(), []);
    } finally {
      await w.close();
    }
  },
);

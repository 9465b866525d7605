/**
 * The Training Charts webview: keeps the host's buffers in typed arrays, draws them with uPlot
 * once per animation frame however many messages arrived, and remembers its runs and settings
 * with setState so a reopened or reloaded panel looks the same.
 */
import '../shared/zod-jitless';
import {
  ChartsState,
  DEFAULT_STATE,
  HostMessage,
  ViewMessage,
  parseChartsState,
  parseHostMessage,
} from '../../src/protocol/charts';
import { vscodeApi } from '../shared/vscode';
import { Chart, ChartActions, ChartSettings } from './chart';
import { chartsFor } from './dashboards';
import { SamplesTable } from './samplesTable';
import { RunStore } from './store';
import { currentTheme } from './theme';
import { Toolbar } from './toolbar';
import { t } from '../shared/l10n';

const api = vscodeApi<ChartsState>();
let state: ChartsState = parseChartsState(api.getState()) ?? DEFAULT_STATE;
const store = new RunStore();
const charts = new Map<string, Chart>();

const post = (message: ViewMessage) => api.postMessage(message);

function update(change: Partial<ChartsState>): void {
  state = { ...state, ...change };
  api.setState(state);
  schedule();
}

/** A chart's settings: the page's, and its own scale. */
function settingsOf(title: string): ChartSettings {
  return { smoothing: state.smoothing, xAxis: state.xAxis, logScale: state.logScale.includes(title) };
}

const chartActions: ChartActions = {
  exportCsv: (chart) =>
    post({
      type: 'export',
      format: 'csv',
      fileName: `${chart.spec.title}.csv`,
      data: chart.csv(store.all(), settingsOf(chart.spec.title)),
    }),
  exportPng: (chart) => {
    const data = chart.png();
    if (data) post({ type: 'export', format: 'png', fileName: `${chart.spec.title}.png`, data });
  },
  remove: (chart) => {
    const { title } = chart.spec;
    if (state.added.includes(title)) update({ added: state.added.filter((m) => m !== title) });
    else update({ removed: [...state.removed, title] });
  },
  toggleLogScale: ({ spec: { title } }) =>
    update({
      logScale: state.logScale.includes(title) ? state.logScale.filter((t) => t !== title) : [...state.logScale, title],
    }),
  changed: () => schedule(),
};

const toolbar = new Toolbar(state, {
  pickRuns: () => post({ type: 'pickRuns' }),
  removeRun: (run) => post({ type: 'removeRun', run }),
  addChart: (metric) => update({ added: [...state.added, metric], removed: state.removed.filter((m) => m !== metric) }),
  change: (settings) => update(settings),
});
const grid = document.createElement('main');
grid.className = 'charts';
grid.dataset.testid = 'charts';
const empty = document.createElement('p');
empty.className = 'empty';
const samples = new SamplesTable(state.search, (search) => update({ search }));
const body = document.createElement('div');
body.className = 'body';
body.append(grid, samples.element);
document.body.append(toolbar.element, empty, body);

/** Charts drawn per animation frame at most: adapts to how long drawing them takes here. */
let drawsPerFrame = 4;
/** A frame that took longer than this (at 60 Hz) has dropped one. */
const LONG_FRAME_MS = 25;
let frame = 0;
let rebuild = false;
/** Read again only when the theme changes: reading styles on every frame would force a style recalculation. */
let theme = currentTheme();

/** Draws on the next animation frame: a burst of messages costs one redraw. */
function schedule(rebuildCharts = false): void {
  rebuild ||= rebuildCharts;
  frame ||= requestAnimationFrame(render);
}

function render(): void {
  frame = 0;
  if (rebuild) theme = currentTheme();
  const runs = store.all();
  const specs = chartsFor(
    runs.map((r) => r.run.stage),
    state.added,
    state.removed,
  );
  for (const [title, chart] of charts) {
    if (specs.some((s) => s.title === title)) continue;
    inView.unobserve(chart.element);
    chart.destroy();
    charts.delete(title);
  }
  specs.forEach((spec, n) => {
    let chart = charts.get(spec.title);
    if (!chart) {
      charts.set(spec.title, (chart = new Chart(spec, chartActions)));
      inView.observe(chart.element);
    }
    // In dashboard order; moved only when out of it, as a move makes the page lay out again.
    if (grid.children[n] !== chart.element) grid.insertBefore(chart.element, grid.children[n] ?? null);
    chart.update(runs, settingsOf(spec.title), rebuild);
  });
  rebuild = false;
  drawSome([...charts.values()].filter((c) => c.stale));
  const charted = new Set(specs.flatMap((s) => s.metrics));
  toolbar.update(
    runs,
    theme.line,
    store.metricNames().filter((m) => !charted.has(m)),
  );
  samples.update(runs, state.search);
  const message = runs.length
    ? specs.length
      ? ''
      : t('Nothing to chart yet.')
    : t('No runs shown. Use Compare runs… to pick some.');
  if (empty.textContent !== message) empty.textContent = message;
  empty.hidden = !message;
}

/**
 * Draws the charts that waited longest, as many as a frame has time for; the rest are drawn on
 * the next frames, with whatever arrived meanwhile. A canvas costs most when the frame is
 * composited, after this code has run, so the cost is read from when the next frame comes:
 * after a long frame, half as many charts; after one on time, one more.
 */
function drawSome(stale: Chart[]): void {
  stale.sort((a, b) => a.drawnAt - b.drawnAt);
  const drawing = stale.slice(0, drawsPerFrame);
  if (!drawing.length) return;
  const started = performance.now();
  for (const chart of drawing) chart.draw();
  requestAnimationFrame(() => {
    if (performance.now() - started > LONG_FRAME_MS) drawsPerFrame = Math.max(1, Math.ceil(drawing.length / 2));
    else if (drawing.length === drawsPerFrame) drawsPerFrame++;
  });
  if (stale.length > drawing.length) schedule();
}

function receive(message: HostMessage): void {
  switch (message.type) {
    case 'runs':
      store.setRuns(message.runs);
      update({ runs: message.runs.map((r) => r.key) });
      return;
    case 'points':
      store.get(message.run)?.apply(message);
      return schedule();
    case 'samples':
      store.get(message.run)?.addSamples(message.groups);
      return schedule();
  }
}

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  const parsed = parseHostMessage(event.data);
  if (parsed.ok) receive(parsed.value);
  else console.warn(`charts: ignored a message from the host (${parsed.error})`);
});
// Charts scrolled out of view are drawn when they come back (a little ahead of time).
const inView = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      const chart = charts.get((entry.target as HTMLElement).dataset.chart ?? '');
      if (chart) chart.visible = entry.isIntersecting;
    }
    schedule();
  },
  { rootMargin: '200px' },
);
// VS Code changes the body's classes when the theme changes; the charts read colours when built.
new MutationObserver(() => schedule(true)).observe(document.body, { attributes: true, attributeFilter: ['class'] });

api.setState(state);
schedule();
post({ type: 'ready' });

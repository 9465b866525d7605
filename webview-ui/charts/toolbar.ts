/** The controls above the charts: the runs shown (legend colours, remove), and the chart settings. */
import { ChartsState, XAxis } from '../../src/protocol/charts';
import { stageLabel } from '../../src/shared/stages';
import { RunData } from './store';
import { t } from '../shared/l10n';

export interface ToolbarActions {
  pickRuns(): void;
  removeRun(key: string): void;
  addChart(metric: string): void;
  change(settings: Partial<Pick<ChartsState, 'smoothing' | 'xAxis'>>): void;
}

export class Toolbar {
  readonly element: HTMLElement;
  private readonly runList: HTMLElement;
  private readonly addChart: HTMLSelectElement;
  private readonly smoothingValue: HTMLOutputElement;
  private shown = '';

  constructor(
    state: ChartsState,
    private readonly actions: ToolbarActions,
  ) {
    this.element = document.createElement('div');
    this.element.className = 'toolbar';
    this.runList = document.createElement('ul');
    this.runList.className = 'runs';
    this.runList.dataset.testid = 'runs';

    const compare = document.createElement('button');
    compare.textContent = t('Compare runs…');
    compare.dataset.testid = 'pick-runs';
    compare.addEventListener('click', () => actions.pickRuns());

    const smoothing = input('range', 'smoothing');
    Object.assign(smoothing, { min: '0', max: '0.99', step: '0.01', value: String(state.smoothing) });
    this.smoothingValue = document.createElement('output');
    this.smoothingValue.textContent = state.smoothing.toFixed(2);
    smoothing.addEventListener('input', () => {
      this.smoothingValue.textContent = Number(smoothing.value).toFixed(2);
      actions.change({ smoothing: Number(smoothing.value) });
    });

    const xAxis = document.createElement('select');
    xAxis.dataset.testid = 'x-axis';
    const axes: Record<XAxis, string> = { step: t('step'), episode: t('episode'), time: t('time (s)') };
    for (const [axis, name] of Object.entries(axes)) xAxis.add(new Option(name, axis, false, axis === state.xAxis));
    xAxis.addEventListener('change', () => actions.change({ xAxis: xAxis.value as XAxis }));

    this.addChart = document.createElement('select');
    this.addChart.dataset.testid = 'add-chart';
    this.addChart.addEventListener('change', () => {
      if (this.addChart.value) actions.addChart(this.addChart.value);
    });

    this.element.append(
      this.runList,
      compare,
      labelled(t('Smoothing'), smoothing, this.smoothingValue),
      labelled(t('X axis'), xAxis),
      this.addChart,
    );
  }

  /** Shows the runs with the colour of their first line, and the metrics that have no chart yet. */
  update(runs: RunData[], lineColour: (run: number) => string, unchartedMetrics: string[]): void {
    // Called on every frame that draws: the DOM is only touched when something it shows changed.
    const shown = JSON.stringify([runs.map((r, n) => [r.run, lineColour(n)]), unchartedMetrics]);
    if (shown === this.shown) return;
    this.shown = shown;
    this.runList.replaceChildren(
      ...runs.map((data, n) => {
        const item = document.createElement('li');
        item.dataset.status = data.run.status;
        const swatch = document.createElement('span');
        swatch.className = 'swatch';
        swatch.style.backgroundColor = lineColour(n);
        const name = document.createElement('span');
        name.textContent = `${data.run.name} · ${stageLabel(data.run.stage)} · ${data.run.status}`;
        name.title = data.run.key;
        const remove = document.createElement('button');
        remove.textContent = '×';
        remove.title = t('Stop showing this run');
        remove.addEventListener('click', () => this.actions.removeRun(data.run.key));
        item.append(swatch, name, remove);
        return item;
      }),
    );
    this.addChart.replaceChildren(new Option(t('Add chart…'), ''), ...unchartedMetrics.map((m) => new Option(m, m)));
    this.addChart.disabled = unchartedMetrics.length === 0;
  }
}

function input(type: string, testid: string): HTMLInputElement {
  const element = document.createElement('input');
  element.type = type;
  element.dataset.testid = testid;
  return element;
}

function labelled(text: string, ...controls: HTMLElement[]): HTMLLabelElement {
  const label = document.createElement('label');
  label.append(text, ...controls);
  return label;
}

/**
 * The latest generations of the runs shown, newest step first, filtered by a search over prompt and
 * response; GRPO's and RLOO's rows add a column per reward function. Beside the charts, or under
 * them at full width for long responses.
 */
import { formatMetric } from '../../src/shared/format';
import { stageLabel } from '../../src/shared/stages';
import { RunData } from './store';
import { t } from '../shared/l10n';

/** Rows drawn at most; the search narrows the rest down. */
const MAX_ROWS = 300;

export class SamplesTable {
  readonly element: HTMLElement;
  private readonly head: HTMLTableRowElement;
  private readonly body: HTMLTableSectionElement;
  private readonly count: HTMLElement;
  private drawn = '';

  constructor(search: string, onSearch: (text: string) => void) {
    this.element = document.createElement('aside');
    this.element.className = 'samples';
    const input = document.createElement('input');
    input.type = 'search';
    input.placeholder = t('Search prompts and responses');
    input.value = search;
    input.dataset.testid = 'samples-search';
    input.addEventListener('input', () => onSearch(input.value));
    this.count = document.createElement('span');
    this.count.className = 'count';
    const wide = document.createElement('button');
    wide.textContent = t('Full width');
    wide.title = t('Show the samples under the charts, at full width');
    wide.dataset.testid = 'samples-wide';
    wide.setAttribute('aria-pressed', 'false');
    wide.addEventListener('click', () => {
      const on = wide.getAttribute('aria-pressed') !== 'true';
      wide.setAttribute('aria-pressed', String(on));
      document.body.classList.toggle('wide-samples', on);
    });
    const table = document.createElement('table');
    this.head = table.createTHead().insertRow();
    this.body = table.createTBody();
    const scroller = document.createElement('div');
    scroller.className = 'table';
    scroller.append(table);
    const header = document.createElement('header');
    header.append(input, this.count, wide);
    this.element.append(header, scroller);
  }

  update(runs: RunData[], search: string): void {
    const drawn = JSON.stringify([runs.map((r) => [r.run.key, r.version]), search]);
    if (drawn === this.drawn) return;
    this.drawn = drawn;
    const needle = search.trim().toLowerCase();
    const rows = runs
      .flatMap((run) =>
        [...run.samples.values()].flatMap((g) =>
          g.rows.map((row) => ({ run: run.run.name, stage: stageLabel(run.run.stage), step: g.step, ...row })),
        ),
      )
      .filter((r) => !needle || r.prompt.toLowerCase().includes(needle) || r.response.toLowerCase().includes(needle))
      .sort((a, b) => b.step - a.step);
    this.count.textContent = rows.length === 1 ? t('1 sample') : t('{0} samples', rows.length);
    const shown = rows.slice(0, MAX_ROWS);
    // Reward functions' names, like metric names, stay as the run wrote them.
    const rewardNames = [...new Set(shown.flatMap((r) => Object.keys(r.rewards ?? {})))];
    const columns = [t('Run'), t('Stage'), t('Step'), t('Prompt'), t('Response'), t('Score'), 'KL'];
    this.head.replaceChildren(
      ...[...columns, ...rewardNames].map((name) => {
        const th = document.createElement('th');
        th.textContent = name;
        return th;
      }),
    );
    this.body.replaceChildren(
      ...shown.map((r) => {
        const tr = document.createElement('tr');
        tr.dataset.testid = 'sample';
        const rewards = rewardNames.map((name) => number(r.rewards?.[name] ?? undefined));
        const scores = [number(r.score), number(r.kl), ...rewards];
        for (const text of [r.run, r.stage, String(r.step), r.prompt, r.response, ...scores])
          tr.insertCell().textContent = text;
        // An empty response says so, rather than leaving a blank cell.
        if (!r.response.trim()) Object.assign(tr.cells[4], { textContent: t('(empty)'), className: 'none' });
        return tr;
      }),
    );
  }
}

const number = (v: number | undefined) => (v === undefined ? '' : formatMetric(v));

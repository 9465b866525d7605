/**
 * The latest generations of the runs shown, newest step first, filtered by a search over prompt and
 * response; GRPO's and RLOO's rows add a column per reward function.
 */
import { formatMetric } from '../../src/shared/format';
import { RunData } from './store';

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
    input.placeholder = 'Search prompts and responses';
    input.value = search;
    input.dataset.testid = 'samples-search';
    input.addEventListener('input', () => onSearch(input.value));
    this.count = document.createElement('span');
    this.count.className = 'count';
    const table = document.createElement('table');
    this.head = table.createTHead().insertRow();
    this.body = table.createTBody();
    const scroller = document.createElement('div');
    scroller.className = 'table';
    scroller.append(table);
    const header = document.createElement('header');
    header.append(input, this.count);
    this.element.append(header, scroller);
  }

  update(runs: RunData[], search: string): void {
    const drawn = JSON.stringify([runs.map((r) => [r.run.key, r.version]), search]);
    if (drawn === this.drawn) return;
    this.drawn = drawn;
    const needle = search.trim().toLowerCase();
    const rows = runs
      .flatMap((run) =>
        [...run.samples.values()].flatMap((g) => g.rows.map((row) => ({ run: run.run.name, step: g.step, ...row }))),
      )
      .filter((r) => !needle || r.prompt.toLowerCase().includes(needle) || r.response.toLowerCase().includes(needle))
      .sort((a, b) => b.step - a.step);
    this.count.textContent = `${rows.length} sample${rows.length === 1 ? '' : 's'}`;
    const shown = rows.slice(0, MAX_ROWS);
    const rewardNames = [...new Set(shown.flatMap((r) => Object.keys(r.rewards ?? {})))];
    this.head.replaceChildren(
      ...['Run', 'Step', 'Prompt', 'Response', 'Score', 'KL', ...rewardNames].map((name) => {
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
        for (const text of [r.run, String(r.step), r.prompt, r.response, number(r.score), number(r.kl), ...rewards])
          tr.insertCell().textContent = text;
        return tr;
      }),
    );
  }
}

const number = (v: number | undefined) => (v === undefined ? '' : formatMetric(v));

/**
 * The Find section of the labeling view: pairs of the queue by text and by status, listed as
 * buttons that open a pair (arrow keys move between them). Searching is the host's: the view
 * sends what to find and shows the matches it gets back.
 */
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { QueueState, StatusFilter } from '../../src/protocol/labeling';
import { t } from '../shared/l10n';
import { h } from './dom';

/** The statuses in the picker, with their names. */
export const STATUS_NAMES: Record<StatusFilter, string> = {
  all: t('All pairs'),
  unlabeled: t('Unlabeled'),
  a: t('Chosen: response_a'),
  b: t('Chosen: response_b'),
  tie: t('Tie'),
  both_bad: t('Both bad'),
  skip: t('Skipped'),
};

/** How long typing pauses before the search is sent. */
const TYPING_MS = 200;

export class SearchPanel {
  private readonly text = h('vscode-textfield', {
    'aria-label': t('Find text'),
    placeholder: t('Find in prompts and responses'),
    'data-testid': 'search-text',
  }) as HTMLElement & { value: string };
  private readonly status = h(
    'vscode-single-select',
    { 'aria-label': t('Status'), 'data-testid': 'search-status' },
    ...Object.entries(STATUS_NAMES).map(([value, name]) => h('vscode-option', { value }, name)),
  ) as HTMLElement & { value: string };
  private readonly count = h('p', { class: 'hint', role: 'status', 'data-testid': 'search-count' });
  private readonly list = h('ul', { 'aria-label': t('Matching pairs'), 'data-testid': 'search-results' });
  readonly element = h(
    'section',
    { class: 'search', id: 'search', 'aria-label': t('Find pairs') },
    h('div', { class: 'search-fields' }, this.text, this.status),
    this.count,
    this.list,
  );
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly events: { find(text: string, status: StatusFilter): void; openPair(pairId: string): void },
  ) {
    this.status.value = 'all';
    this.text.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.send(), TYPING_MS);
    });
    this.status.addEventListener('change', () => this.send());
    this.element.addEventListener('keydown', (event) => this.move(event));
  }

  /** Sends the search as it stands (when the section opens, and on every change). */
  send(): void {
    clearTimeout(this.timer);
    this.events.find(this.text.value, this.status.value as StatusFilter);
  }

  focus(): void {
    this.text.focus();
  }

  render(found: QueueState['found']): void {
    if (!found) return;
    this.count.textContent = t('{0} pairs match', found.count);
    this.list.replaceChildren(
      ...found.pairs.map(({ pairId, prompt, status }) => {
        const button = h(
          'button',
          { type: 'button', class: 'found', 'data-testid': `found-${pairId}`, 'data-status': status },
          h('span', { class: 'found-status' }, STATUS_NAMES[status]),
          ` ${prompt}`,
        );
        button.addEventListener('click', () => this.events.openPair(pairId));
        return h('li', {}, button);
      }),
    );
  }

  /** ArrowDown and ArrowUp move between the text field and the matches. */
  private move(event: KeyboardEvent): void {
    if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
    const buttons = [...this.list.querySelectorAll('button')];
    const at = buttons.findIndex((b) => b === document.activeElement);
    const fromText = event.composedPath().includes(this.text);
    if (at === -1 && !fromText) return;
    event.preventDefault();
    const next = at + (event.key === 'ArrowDown' ? 1 : -1);
    if (next < 0) this.text.focus();
    else buttons[Math.min(next, buttons.length - 1)]?.focus();
  }
}

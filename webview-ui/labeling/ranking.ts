/**
 * Ranking mode of the labeling view: the candidates of a prompt in a list, best first, ordered by
 * dragging or from the keyboard: ↑/↓ move the focus, Alt+↑/↓ move the candidate, a digit puts it
 * at that place, T ties it with the one above, Enter saves, S skips the prompt.
 */
import type { QueueState } from '../../src/protocol/labeling';
import { t } from '../shared/l10n';
import { h, keyHint, renderPrompt } from './dom';
import { renderMarkdown } from './markdown';

export type Ranking = NonNullable<QueueState['ranking']>;
export type Ranks = { candidate: string; rank: number }[];

export class RankingPanel {
  private readonly promptLabel = h('h2', { class: 'label', 'data-testid': 'ranking-label' });
  private readonly prompt = h('div', {
    class: 'text markdown',
    tabindex: '0',
    role: 'region',
    'aria-label': t('Prompt'),
  });
  private readonly list = h('ol', {
    class: 'rank-list',
    role: 'listbox',
    'aria-label': t('Responses, best first'),
    'data-testid': 'ranking-list',
  });
  private readonly saveButton = h(
    'vscode-button',
    { 'data-testid': 'ranking-save', 'aria-keyshortcuts': 'Enter' },
    t('Save ranking'),
    keyHint('↵'),
  );
  private readonly skipButton = h(
    'vscode-button',
    { secondary: true, 'data-testid': 'ranking-skip', 'aria-keyshortcuts': 'S' },
    t('Skip prompt'),
    keyHint('s'),
  );
  readonly element = h(
    'section',
    { class: 'ranking', 'aria-label': t('Rank the responses'), 'data-testid': 'ranking' },
    h('section', { class: 'box prompt' }, this.promptLabel, this.prompt),
    this.list,
    h(
      'p',
      { class: 'hint', id: 'ranking-keys' },
      t('↑↓ pick · Alt+↑↓ or drag to move · 1–9 place · T ties with the one above'),
    ),
    h('div', { class: 'rank-actions' }, this.saveButton, this.skipButton),
  );
  private shown: Ranking | undefined;
  /** Candidate ids, best first. */
  private order: string[] = [];
  /** Candidates ranked the same as the one above them. */
  private readonly tied = new Set<string>();
  private dragged: string | undefined;

  constructor(private readonly events: { rank(pairIds: string[], ranks: Ranks | 'skip'): void }) {
    this.list.setAttribute('aria-describedby', 'ranking-keys');
    this.list.addEventListener('keydown', (event) => this.key(event));
    this.saveButton.addEventListener('click', () => this.save());
    this.skipButton.addEventListener('click', () => this.skip());
  }

  /** Shows a prompt to rank; the order the person made is kept while the same prompt is shown. */
  render(ranking: Ranking): void {
    const same = this.shown && this.shown.pairIds.join('\n') === ranking.pairIds.join('\n');
    this.shown = ranking;
    if (same) return;
    this.order = ranking.candidates.map((c) => c.id);
    this.tied.clear();
    renderPrompt(this.prompt, ranking.prompt);
    this.promptLabel.textContent = t(
      'Prompt · rank {0} responses for {1} pairs',
      this.order.length,
      ranking.pairIds.length,
    );
    this.draw();
    if (document.activeElement === document.body || this.element.contains(document.activeElement)) this.focusAt(0);
  }

  /** The ranks as the list shows them: places 1, 2, … with a tied candidate sharing the one above's. */
  ranks(): Ranks {
    const ranks: Ranks = [];
    this.order.forEach((candidate, i) => {
      const rank = i > 0 && this.tied.has(candidate) ? ranks[i - 1].rank : i + 1;
      ranks.push({ candidate, rank });
    });
    return ranks;
  }

  save(): void {
    if (this.shown) this.events.rank(this.shown.pairIds, this.ranks());
  }

  skip(): void {
    if (this.shown) this.events.rank(this.shown.pairIds, 'skip');
  }

  setDisabled(disabled: boolean): void {
    for (const button of [this.saveButton, this.skipButton])
      (button as HTMLElement & { disabled: boolean }).disabled = disabled;
  }

  private draw(): void {
    const texts = new Map(this.shown!.candidates.map((c) => [c.id, c.text]));
    const ranks = this.ranks();
    this.list.replaceChildren(
      ...this.order.map((id, i) => {
        const body = h('div', { class: 'text markdown' });
        renderMarkdown(body, texts.get(id) ?? '');
        const tie = i > 0 && this.tied.has(id);
        const item = h(
          'li',
          {
            class: 'candidate',
            role: 'option',
            tabindex: i === 0 ? '0' : '-1',
            draggable: 'true',
            'aria-selected': 'false',
            'aria-label': tie ? t('Rank {0} (tie)', ranks[i].rank) : t('Rank {0}', ranks[i].rank),
            'data-candidate': id,
            'data-testid': `candidate-${id}`,
          },
          h('span', { class: 'rank', 'aria-hidden': 'true' }, tie ? `=${ranks[i].rank}` : String(ranks[i].rank)),
          body,
        );
        item.addEventListener('focus', () => item.setAttribute('aria-selected', 'true'));
        item.addEventListener('blur', () => item.setAttribute('aria-selected', 'false'));
        item.addEventListener('dragstart', () => (this.dragged = id));
        item.addEventListener('dragover', (event) => event.preventDefault());
        item.addEventListener('drop', (event) => {
          event.preventDefault();
          if (this.dragged !== undefined) this.move(this.dragged, this.order.indexOf(id));
        });
        return item;
      }),
    );
  }

  private focusAt(index: number): void {
    const items = this.list.querySelectorAll<HTMLElement>('li');
    items.forEach((item, i) => item.setAttribute('tabindex', i === index ? '0' : '-1'));
    items[index]?.focus();
  }

  /** Moves a candidate to a place in the list and keeps the focus on it. */
  private move(id: string, to: number): void {
    const place = Math.max(0, Math.min(this.order.length - 1, to));
    this.order.splice(this.order.indexOf(id), 1);
    this.order.splice(place, 0, id);
    this.draw();
    this.focusAt(place);
  }

  private key(event: KeyboardEvent): void {
    const items = [...this.list.querySelectorAll<HTMLElement>('li')];
    const at = items.findIndex((item) => item === document.activeElement);
    if (at === -1 || event.ctrlKey || event.metaKey) return;
    const id = this.order[at];
    const step = event.key === 'ArrowDown' ? 1 : event.key === 'ArrowUp' ? -1 : 0;
    const digit = /^[1-9]$/.test(event.key) ? Number(event.key) : undefined;
    if (step !== 0 && event.altKey) this.move(id, at + step);
    else if (step !== 0) this.focusAt(Math.max(0, Math.min(items.length - 1, at + step)));
    else if (digit !== undefined) this.move(id, digit - 1);
    else if (event.key.toLowerCase() === 't' && at > 0) {
      if (!this.tied.delete(id)) this.tied.add(id);
      this.draw();
      this.focusAt(at);
    } else if (event.key === 'Enter') this.save();
    else if (event.key.toLowerCase() === 's') this.skip();
    else return;
    event.preventDefault();
  }
}

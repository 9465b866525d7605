/**
 * What the labels teach, in the labeling view: the scoring model (the experiment's newest reward
 * model) with its held-out accuracy, its margin beside the person's latest label, the labels it
 * confidently contradicts (each opens its pair to re-check and relabel), and the re-check banner.
 * The host sends margins only for labeled pairs, so
 * nothing here can show the model's opinion of a pair before the person has judged it.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { ModelView, QueueState, ScoredChoice } from '../../src/protocol/labeling';
import { t } from '../shared/l10n';
import { h, icon } from './dom';

export interface ModelPanelEvents {
  /** Shows a labeled pair again to re-check it; without one, back to the queue. */
  openPair(pairId?: string): void;
}

type Review = NonNullable<QueueState['review']>;

const side = (choice: 'left' | 'right') => (choice === 'left' ? 'A' : 'B');

/** What the model makes of a label: which response it prefers, by how much, and whether it agrees. */
function verdict({ choice, margin }: { choice: 'left' | 'right'; margin: number }): string {
  const preferred = margin >= 0 ? 'left' : 'right';
  const text = t(
    'You chose {0}; the model prefers {1} by {2}',
    side(choice),
    side(preferred),
    Math.abs(margin).toFixed(2),
  );
  return `${text} (${preferred === choice ? t('agrees') : t('disagrees')})`;
}

export class ModelPanel {
  private readonly heading = h('h2', { class: 'label', 'data-testid': 'model-name' });
  private readonly accuracy = h('span', { class: 'accuracy', 'data-testid': 'model-accuracy' });
  private readonly scoring = h(
    'span',
    { class: 'scoring', role: 'status', 'data-testid': 'model-scoring' },
    icon('loading codicon-modifier-spin'),
    ` ${t('Scoring…')}`,
  );
  private readonly latest = h('p', { class: 'margin', 'data-testid': 'model-latest', 'aria-live': 'polite' });
  private readonly listSummary = h('summary', { 'data-testid': 'disagreements-summary' });
  private readonly list = h('ul', { class: 'disagreements', 'aria-label': t('Disagreements') });
  private readonly disagreements = h('details', { 'data-testid': 'disagreements' }, this.listSummary, this.list);
  private readonly back = h('vscode-button', { secondary: true, 'data-testid': 'review-back' }, t('Back to the Queue'));
  private readonly reviewText = h('p', { 'data-testid': 'review-text' });
  /** Over the pair while it is re-checked. */
  readonly reviewBanner = h(
    'section',
    { class: 'review', role: 'status', 'data-testid': 'review' },
    this.reviewText,
    this.back,
  );
  readonly element = h(
    'section',
    { class: 'model', 'aria-label': t('Reward model') },
    h('div', { class: 'model-head' }, this.heading, this.accuracy, this.scoring),
    this.latest,
    this.disagreements,
  );

  constructor(private readonly events: ModelPanelEvents) {
    this.back.addEventListener('click', () => events.openPair());
  }

  render(model: ModelView | undefined, review: Review | undefined): void {
    this.renderReview(review);
    this.element.hidden = !model;
    if (!model) return;
    this.heading.textContent = model.name;
    this.accuracy.hidden = model.accuracy === undefined;
    if (model.accuracy !== undefined)
      this.accuracy.textContent = t('{0}% held-out accuracy', Math.round(model.accuracy * 100));
    this.scoring.hidden = !model.scoring;
    this.latest.hidden = !model.latest;
    if (model.latest) this.latest.textContent = `${t('Last label')}: ${verdict(model.latest)}`;
    this.renderDisagreements(model);
  }

  private renderReview(review: Review | undefined): void {
    this.reviewBanner.hidden = !review;
    if (!review) return;
    const { choice, margin } = review;
    const standing = choice ? t('You chose {0}.', side(choice)) : t('This pair is labeled.');
    const scored = choice && margin !== undefined ? `${verdict({ choice, margin })}. ` : `${standing} `;
    this.reviewText.textContent = `${t('Re-checking a labeled pair.')} ${scored}${t('A new choice replaces the label.')}`;
  }

  private renderDisagreements(model: ModelView): void {
    this.listSummary.textContent = t('Disagreements ({0})', model.disagreementCount);
    this.list.replaceChildren(...model.disagreements.map((entry) => this.entry(entry)));
  }

  private entry(entry: ScoredChoice): HTMLElement {
    const button = h(
      'button',
      { type: 'button', class: 'disagreement', 'data-testid': 'disagreement', 'data-pair': entry.pairId },
      h('span', { class: 'excerpt' }, entry.prompt),
      h('span', { class: 'verdict' }, verdict(entry)),
    );
    button.title = t('Re-check this pair');
    button.addEventListener('click', () => this.events.openPair(entry.pairId));
    return h('li', {}, button);
  }
}

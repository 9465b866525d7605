/**
 * The pair being labeled: the prompt (with which of its prompt's pairs this is, whether it is a
 * quality check or a labeled pair opened again, and the run it was sampled from), responses A and
 * B, each scrolling in its own box, and the optional rationale.
 */
import '@vscode-elements/elements/dist/vscode-textarea/index.js';
import type { ShownPair } from '../../src/protocol/labeling';
import { t } from '../shared/l10n';
import { CHOICES } from './choices';
import { h, renderPrompt, setDisabled } from './dom';
import { renderMarkdown } from './markdown';

function textBox(name: string, testId: string): HTMLElement {
  return h('div', { class: 'text markdown', tabindex: '0', role: 'region', 'aria-label': name, 'data-testid': testId });
}

export class PairPanel {
  private readonly promptLabel = h('h2', { class: 'label', 'data-testid': 'prompt-label' }, t('Prompt'));
  private readonly prompt = textBox(t('Prompt'), 'prompt');
  private readonly left = textBox(t('Response A'), 'response-left');
  private readonly right = textBox(t('Response B'), 'response-right');
  private readonly rationale = h('vscode-textarea', {
    label: t('Rationale (optional)'),
    'aria-label': t('Rationale (optional)'),
    placeholder: t('Why? (optional)'),
    title: t('Why? (optional; Escape returns to the keys)'),
    rows: '1',
    resize: 'vertical',
    'data-testid': 'rationale',
  }) as HTMLElement & { value: string };
  readonly element = h(
    'section',
    { class: 'pair', 'aria-label': t('Comparison') },
    h('section', { class: 'box prompt' }, this.promptLabel, this.prompt),
    h(
      'div',
      { class: 'responses', 'data-testid': 'responses' },
      h('section', { class: 'box response' }, h('h2', { class: 'label' }, 'A'), this.left),
      h('section', { class: 'box response' }, h('h2', { class: 'label' }, 'B'), this.right),
    ),
    this.rationale,
  );
  private shownPairId: string | undefined;

  constructor(events: { rationaleChanged(text: string): void; leaveRationale(): void }) {
    this.rationale.addEventListener('input', () => events.rationaleChanged(this.rationale.value));
    this.rationale.addEventListener('keydown', (e) => {
      if ((e as KeyboardEvent).key === 'Escape') events.leaveRationale();
    });
  }

  get rationaleText(): string {
    return this.rationale.value;
  }

  setDisabled(disabled: boolean): void {
    setDisabled(this.rationale, disabled);
  }

  /** Shows `pair` (none: hides the panel); a new pair starts with `draft` as its rationale. */
  show(pair: ShownPair | undefined, draft: string | undefined): void {
    this.element.hidden = pair === undefined;
    if (pair?.pairId === this.shownPairId) return;
    this.shownPairId = pair?.pairId;
    this.rationale.value = draft ?? '';
    if (!pair) return;
    renderPrompt(this.prompt, pair.prompt);
    this.promptLabel.textContent = heading(pair);
    if (pair.source)
      this.promptLabel.append(
        ' · ',
        h('span', { class: 'source', 'data-testid': 'pair-source' }, t('from {0}', pair.source)),
      );
    renderMarkdown(this.left, pair.left);
    renderMarkdown(this.right, pair.right);
    for (const text of [this.prompt, this.left, this.right]) text.scrollTop = 0;
  }
}

/** The prompt's heading: which of the prompt's pairs this is, and why it is shown. */
function heading(pair: ShownPair): string {
  const { position } = pair;
  const where =
    position && position.count > 1 ? t('Prompt · pair {0} of {1}', position.index, position.count) : t('Prompt');
  const labeled = pair.labeled && CHOICES.find((c) => c.choice === pair.labeled)?.text;
  if (pair.check) return t('{0} · quality check (sides swapped)', where);
  return labeled ? t('{0} · labeled: {1}; a new choice replaces it', where, labeled) : where;
}

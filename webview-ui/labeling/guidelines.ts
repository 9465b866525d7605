/**
 * The Guidelines section of the labeling view: the experiment's labeling guidelines, as Markdown,
 * opened from the toolbar's book button so closed guidelines take no room from the pair.
 */
import { t } from '../shared/l10n';
import { h } from './dom';
import { renderMarkdown } from './markdown';

export class GuidelinesPanel {
  private readonly body = h('div', { class: 'markdown', 'data-testid': 'guidelines' });
  readonly element = h('section', { class: 'guidelines', 'aria-label': t('Guidelines'), id: 'guidelines' }, this.body);

  /** The guidelines, or where to put them when the experiment has none. */
  render(markdown: string | undefined): void {
    if (markdown !== undefined) return renderMarkdown(this.body, markdown);
    this.body.replaceChildren(
      h(
        'p',
        { class: 'hint' },
        t(
          'Put labeling guidelines in guidelines.md beside the queue file, or name a Markdown file in comparisons.guidelines, to see them here.',
        ),
      ),
    );
  }
}

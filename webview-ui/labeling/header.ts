/**
 * The labeling view's header: the queue picker, the progress, and the toolbar with the sections it
 * opens (guidelines, statistics, Find) and Generate More Comparisons from a Run's Model. In a
 * narrow sidebar the picker takes a row of its own, so the queue's name stays readable.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import type { QueueState, StatusFilter, ViewCommand, ViewSection } from '../../src/protocol/labeling';
import { t } from '../shared/l10n';
import { h, SectionToggle, toolButton } from './dom';
import { GuidelinesPanel } from './guidelines';
import { SearchPanel } from './search';
import { StatisticsPanel } from './stats';

export interface HeaderEvents {
  selectQueue(key: string): void;
  run(command: ViewCommand): void;
  /** A section (guidelines, statistics, Find) was opened or closed. */
  sectionToggled(section: ViewSection, open: boolean): void;
  find(text: string, status: StatusFilter): void;
  openPair(pairId: string): void;
}

export class ViewHeader {
  private readonly picker = h('vscode-single-select', {
    'aria-label': t('Queue'),
    'data-testid': 'queue-picker',
  }) as HTMLElement & { value: string };
  private readonly progressText = h('span', { 'data-testid': 'progress' });
  private readonly progressBar = h('progress', { 'aria-label': t('Labeling progress') }) as HTMLProgressElement;
  private readonly guidelines = new GuidelinesPanel();
  private readonly statistics = new StatisticsPanel();
  private readonly search: SearchPanel;
  private readonly toggles: Record<ViewSection, SectionToggle>;
  private readonly generate = toolButton(t('Sample new pairs from the model of a run'), 'sparkle', 'generate-from-run');
  readonly element: HTMLElement;
  /** The sections the toolbar opens, in the order they go under it. */
  readonly sections: HTMLElement[];

  constructor(private readonly events: HeaderEvents) {
    this.search = new SearchPanel({
      find: (text, status) => events.find(text, status),
      openPair: (pairId) => events.openPair(pairId),
    });
    this.toggles = {
      guidelines: new SectionToggle(
        this.guidelines.element,
        { name: t('Labeling guidelines'), codicon: 'book', testId: 'guidelines-toggle' },
        (open) => events.sectionToggled('guidelines', open),
      ),
      statistics: new SectionToggle(
        this.statistics.element,
        { name: t('Labeling statistics'), codicon: 'graph', testId: 'statistics-toggle' },
        (open) => events.sectionToggled('statistics', open),
      ),
      search: new SectionToggle(
        this.search.element,
        { name: t('Find pairs (/)'), codicon: 'search', testId: 'search-toggle' },
        (open) => this.searchToggled(open),
      ),
    };
    this.element = h(
      'header',
      { class: 'toolbar' },
      this.picker,
      h('div', { class: 'progress' }, this.progressText, this.progressBar),
      h(
        'div',
        { class: 'tools', role: 'toolbar', 'aria-label': t('Labeling tools') },
        ...Object.values(this.toggles).map((toggle) => toggle.button),
        this.generate,
      ),
    );
    this.sections = [this.statistics.element, this.search.element, this.guidelines.element];
    this.picker.addEventListener('change', () => events.selectQueue(this.picker.value));
    this.generate.addEventListener('click', () => events.run('rlhf.generateComparisonsFromRun'));
  }

  render(state: QueueState): void {
    this.setQueues(state);
    this.progressText.textContent = t('{0} / {1} labeled', state.done, state.total);
    this.progressBar.max = Math.max(state.total, 1);
    this.progressBar.value = state.done;
    this.guidelines.render(state.guidelines);
    this.statistics.render(state.statistics);
    this.search.render(state.found);
    // Sections hidden while there was no queue come back as their buttons left them.
    for (const toggle of Object.values(this.toggles))
      toggle.set(toggle.button.getAttribute('aria-expanded') === 'true');
  }

  /** With no queue to show, no section is either. */
  hideSections(): void {
    for (const toggle of Object.values(this.toggles)) toggle.section.hidden = true;
  }

  /** Opens the sections that were open when the page was last shown. */
  openSections(open: Partial<Record<ViewSection, boolean>>): void {
    for (const [section, toggle] of Object.entries(this.toggles)) toggle.set(open[section as ViewSection] === true);
    if (open.search) this.search.send();
  }

  /** Opens a section (remembered as the toolbar's button would). */
  openSection(section: ViewSection): void {
    if (this.toggles[section].open) return;
    this.toggles[section].set(true);
    if (section === 'search') this.searchToggled(true);
    else this.events.sectionToggled(section, true);
  }

  /** Opens the Find section and puts the cursor in its text field. */
  openSearch(): void {
    this.openSection('search');
    this.search.focus();
  }

  private searchToggled(open: boolean): void {
    this.events.sectionToggled('search', open);
    if (open) this.search.send();
  }

  private setQueues(state: QueueState): void {
    const options = state.queues.map((q) =>
      h('vscode-option', { value: q.key, description: q.detail }, `${q.label} (${q.detail})`),
    );
    const current = [...this.picker.children].map((o) => `${o.getAttribute('value')}\n${o.textContent}`).join('\n');
    if (current !== options.map((o) => `${o.getAttribute('value')}\n${o.textContent}`).join('\n'))
      this.picker.replaceChildren(...options);
    if (this.picker.value !== state.selected) this.picker.value = state.selected;
  }
}

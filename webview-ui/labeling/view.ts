/**
 * The labeling view's DOM, built once and updated in place, so focus stays where the person left
 * it while pairs come and go. Every control has an accessible name and a data-testid.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-textarea/index.js';
import type {
  Choice,
  LabelingMode,
  QueueState,
  ShownPair,
  StatusFilter,
  ViewCommand,
  ViewSection,
  ViewState,
} from '../../src/protocol/labeling';
import { renderMarkdown } from './markdown';
import { h, icon, keyHint, renderPrompt, SectionToggle, setDisabled } from './dom';
import { StatisticsPanel } from './stats';
import { SearchPanel } from './search';
import { RankingPanel, Ranks } from './ranking';
import { ModelPanel } from './margins';
import { GuidelinesPanel } from './guidelines';
import { CHOICES } from './choices';
import { t, tNodes } from '../shared/l10n';

export interface ViewEvents {
  choose(choice: Choice): void;
  undo(): void;
  selectQueue(key: string): void;
  run(command: ViewCommand): void;
  rationaleChanged(text: string): void;
  /** A section (guidelines, statistics) was opened or closed. */
  sectionToggled(section: Section, open: boolean): void;
  find(text: string, status: StatusFilter): void;
  /** Shows this pair instead of the next unlabeled one (a labeled one to re-check); none: back to the queue. */
  openPair(pairId?: string): void;
  rank(pairIds: string[], ranks: Ranks | 'skip'): void;
  setMode(mode: LabelingMode): void;
}

export type Section = ViewSection;

export type SaveStatus =
  { kind: 'idle' } | { kind: 'saving' } | { kind: 'saved'; text: string } | { kind: 'failed'; error: string };

export class LabelingView {
  private readonly picker = h('vscode-single-select', {
    'aria-label': t('Queue'),
    'data-testid': 'queue-picker',
  }) as HTMLElement & { value: string };
  private readonly progressText = h('span', { 'data-testid': 'progress' });
  private readonly progressBar = h('progress', { 'aria-label': t('Labeling progress') }) as HTMLProgressElement;
  private readonly guidelines = new GuidelinesPanel();
  private readonly statistics = new StatisticsPanel();
  private readonly ranking = new RankingPanel({ rank: (pairIds, ranks) => this.events.rank(pairIds, ranks) });
  private mode: LabelingMode = 'pairwise';
  /** In the footer, one text line high, so it takes no room from the pair. */
  private readonly modeToggle = h(
    'button',
    {
      type: 'button',
      class: 'mode-toggle',
      title: t('Rank all responses of a prompt at once'),
      'aria-pressed': 'false',
      'data-testid': 'mode-toggle',
    },
    icon('list-ordered'),
    ` ${t('Rank')}`,
  );
  private readonly search = new SearchPanel({
    find: (text, status) => this.events.find(text, status),
    openPair: (pairId) => this.events.openPair(pairId),
  });
  private readonly toggles: Record<Section, SectionToggle> = {
    guidelines: new SectionToggle(
      this.guidelines.element,
      { name: t('Labeling guidelines'), codicon: 'book', testId: 'guidelines-toggle' },
      (open) => this.events.sectionToggled('guidelines', open),
    ),
    statistics: new SectionToggle(
      this.statistics.element,
      { name: t('Labeling statistics'), codicon: 'graph', testId: 'statistics-toggle' },
      (open) => this.events.sectionToggled('statistics', open),
    ),
    search: new SectionToggle(
      this.search.element,
      { name: t('Find pairs (/)'), codicon: 'search', testId: 'search-toggle' },
      (open) => this.searchToggled(open),
    ),
  };
  private readonly header = h(
    'header',
    { class: 'toolbar' },
    this.picker,
    h('div', { class: 'progress' }, this.progressText, this.progressBar),
    this.toggles.guidelines.button,
    this.toggles.statistics.button,
    this.toggles.search.button,
  );
  /** The reward model's view of the labels, and Generate from a Run in the toolbar (margins.ts). */
  private readonly model: ModelPanel;
  private readonly notice = h('section', { class: 'notice', 'data-testid': 'notice', 'aria-live': 'polite' });
  private readonly restrictedBanner = h(
    'section',
    { class: 'restricted', role: 'status', 'data-testid': 'restricted' },
    h(
      'p',
      {},
      icon('shield'),
      ` ${t('Restricted Mode: this queue is read-only, and labels are not saved until you trust the workspace.')}`,
    ),
    this.commandButton({ command: 'workbench.trust.manage', text: t('Manage Workspace Trust') }, 'manage-trust'),
  );
  private readonly promptLabel = h('h2', { class: 'label', 'data-testid': 'prompt-label' }, t('Prompt'));
  private readonly prompt = h('div', {
    class: 'text markdown',
    tabindex: '0',
    role: 'region',
    'aria-label': t('Prompt'),
    'data-testid': 'prompt',
  });
  private readonly left = h('div', {
    class: 'text markdown',
    tabindex: '0',
    role: 'region',
    'aria-label': t('Response A'),
    'data-testid': 'response-left',
  });
  private readonly right = h('div', {
    class: 'text markdown',
    tabindex: '0',
    role: 'region',
    'aria-label': t('Response B'),
    'data-testid': 'response-right',
  });
  private readonly rationale = h('vscode-textarea', {
    label: t('Rationale (optional)'),
    'aria-label': t('Rationale (optional)'),
    placeholder: t('Why? (optional)'),
    title: t('Why? (optional; Escape returns to the keys)'),
    rows: '1',
    resize: 'vertical',
    'data-testid': 'rationale',
  }) as HTMLElement & { value: string };
  private readonly choiceButtons = CHOICES.map(({ choice, text, key }) =>
    h(
      'vscode-button',
      {
        'aria-label': text,
        'aria-keyshortcuts': key.toUpperCase(),
        'data-testid': `choice-${choice}`,
        'data-choice': choice,
        secondary: choice !== 'left' && choice !== 'right',
      },
      text,
      keyHint(key),
    ),
  );
  private readonly undoButton = h(
    'vscode-button',
    {
      secondary: true,
      'aria-label': t('Undo the last label'),
      'aria-keyshortcuts': 'Control+Z Meta+Z U',
      'data-testid': 'undo',
    },
    icon('discard'),
    ` ${t('Undo')}`,
    keyHint('u'),
  );
  private readonly saveStatus = h('span', { class: 'save-status', role: 'status', 'data-testid': 'save-status' });
  private readonly problemList = h('ul', {
    'aria-label': t('Problems in the experiment and queue files'),
    'data-testid': 'problems',
  });
  private readonly problemSummary = h('summary', { 'data-testid': 'problems-summary' });
  /** Problems sit under the toolbar, one line until opened, so they show beside the queue without pushing it away. */
  private readonly problems = h('details', { class: 'problems' }, this.problemSummary, this.problemList);
  private readonly pair = h(
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
  /** The choices and undo, in three columns; the choices hide when no pair is shown, undo stays. */
  private readonly choices = h(
    'div',
    { class: 'choices', role: 'group', 'aria-label': t('Which response is better?') },
    ...this.choiceButtons,
    this.undoButton,
  );
  private readonly footer = h('footer', { class: 'footer' }, this.saveStatus, this.modeToggle);
  private shownPairId: string | undefined;
  /** Restricted Mode: the choices, undo and rationale stay disabled. */
  private restricted = false;

  constructor(
    root: HTMLElement,
    private readonly events: ViewEvents,
  ) {
    this.model = new ModelPanel(events);
    this.header.append(this.model.generate);
    root.append(
      h(
        'main',
        {},
        this.header,
        this.restrictedBanner,
        this.problems,
        this.notice,
        this.statistics.element,
        this.search.element,
        this.guidelines.element,
        this.model.reviewBanner,
        this.pair,
        this.ranking.element,
        this.choices,
        this.model.element,
        this.footer,
      ),
    );
    for (const button of this.choiceButtons)
      button.addEventListener('click', () => events.choose(button.dataset.choice as Choice));
    this.undoButton.addEventListener('click', () => events.undo());
    this.picker.addEventListener('change', () => events.selectQueue(this.picker.value));
    this.rationale.addEventListener('input', () => events.rationaleChanged(this.rationale.value));
    this.rationale.addEventListener('keydown', (e) => {
      if ((e as KeyboardEvent).key === 'Escape') this.choiceButtons[0].focus();
    });
    const parts = [
      this.header,
      this.restrictedBanner,
      this.pair,
      this.choices,
      this.footer,
      this.problems,
      this.model.element,
      this.model.reviewBanner,
    ];
    this.show(this.ranking.element, false);
    this.modeToggle.addEventListener('click', () => events.setMode(this.mode === 'ranking' ? 'pairwise' : 'ranking'));
    for (const part of parts) this.show(part, false);
    this.notice.textContent = t('Loading…');
  }

  /** Shows `state`; a rationale draft kept for its pair is put back. */
  render(state: ViewState, draft: { pairId: string; rationale: string } | undefined): void {
    this.show(this.header, state.kind === 'queue');
    this.show(this.footer, state.kind === 'queue');
    this.show(this.choices, state.kind === 'queue');
    this.setRestricted(state.kind === 'queue' && state.restricted);
    if (state.kind === 'noQueue') {
      this.setNotice(
        [
          h('p', {}, t('No labeling queue is set up in this workspace.')),
          h(
            'p',
            {},
            ...tNodes(
              'Add a {0} section to an experiment file ({1}): {2} is a JSONL file of prompts to sample responses for; {3} and {4} name the pairs to label and where the labels go.',
              ...['comparisons', '*.rlhf.json', 'prompts', 'queue', 'preferences'].map((name) => h('code', {}, name)),
            ),
          ),
        ],
        { command: 'rlhf.newExperiment', text: t('New Experiment') },
      );
      for (const toggle of Object.values(this.toggles)) toggle.section.hidden = true;
      this.showPair(undefined, undefined);
      this.show(this.ranking.element, false);
      this.model.render(undefined, undefined);
      this.setProblems(state.problems, true);
      return;
    }
    this.setQueues(state);
    this.progressText.textContent = t('{0} / {1} labeled', state.done, state.total);
    this.progressBar.max = Math.max(state.total, 1);
    this.progressBar.value = state.done;
    this.guidelines.render(state.guidelines);
    this.statistics.render(state.statistics);
    this.search.render(state.found);
    for (const toggle of Object.values(this.toggles))
      toggle.set(toggle.button.getAttribute('aria-expanded') === 'true');
    this.mode = state.mode ?? 'pairwise';
    this.modeToggle.setAttribute('aria-pressed', String(this.mode === 'ranking'));
    this.show(this.ranking.element, state.ranking !== undefined && !state.pair);
    if (state.ranking) this.ranking.render(state.ranking);
    if (state.pair || state.ranking) this.setNotice([]);
    else if (state.total === 0) {
      this.setNotice(
        [h('p', {}, t('This queue is empty. Generate Comparisons samples pairs of responses to label.'))],
        {
          command: 'rlhf.generateComparisons',
          text: t('Generate Comparisons'),
        },
      );
    } else {
      this.setNotice([h('p', {}, t('All {0} pairs are labeled.', state.total))], {
        command: 'rlhf.generateComparisons',
        text: t('Generate More Comparisons'),
      });
    }
    this.showPair(state.pair, draft?.pairId === state.pair?.pairId ? draft?.rationale : undefined);
    this.model.render(state.model, state.review);
    setDisabled(this.undoButton, !state.canUndo || state.restricted);
    this.setProblems(state.problems, false);
  }

  setSaveStatus(status: SaveStatus): void {
    const saving = status.kind === 'saving';
    for (const button of this.choiceButtons) setDisabled(button, saving || this.restricted);
    this.ranking.setDisabled(saving || this.restricted);
    this.saveStatus.dataset.state = status.kind;
    const content: Record<SaveStatus['kind'], (Node | string)[]> = {
      idle: [],
      saving: [icon('loading codicon-modifier-spin'), ` ${t('Saving…')}`],
      saved: [icon('check'), ` ${status.kind === 'saved' ? status.text : ''}`],
      failed: [icon('error'), ` ${status.kind === 'failed' ? status.error : ''}`],
    };
    this.saveStatus.replaceChildren(...content[status.kind]);
  }

  /** Opens the sections that were open when the page was last shown. */
  openSections(open: Partial<Record<Section, boolean>>): void {
    for (const [section, toggle] of Object.entries(this.toggles)) toggle.set(open[section as Section] === true);
    if (open.search) this.search.send();
  }

  /** Opens a section (remembered as the toolbar's button would). */
  openSection(section: Section): void {
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

  get rationaleText(): string {
    return this.rationale.value;
  }

  private showPair(pair: ShownPair | undefined, draft: string | undefined): void {
    this.show(this.pair, pair !== undefined);
    for (const button of this.choiceButtons) this.show(button, pair !== undefined);
    if (pair?.pairId === this.shownPairId) return;
    this.shownPairId = pair?.pairId;
    this.rationale.value = draft ?? '';
    if (!pair) return;
    renderPrompt(this.prompt, pair.prompt);
    const { position } = pair;
    const where =
      position && position.count > 1 ? t('Prompt · pair {0} of {1}', position.index, position.count) : t('Prompt');
    const labeled = pair.labeled && CHOICES.find((c) => c.choice === pair.labeled)?.text;
    this.promptLabel.textContent = pair.check
      ? t('{0} · quality check (sides swapped)', where)
      : labeled
        ? t('{0} · labeled: {1}; a new choice replaces it', where, labeled)
        : where;
    if (pair.source)
      this.promptLabel.append(
        ' · ',
        h('span', { class: 'source', 'data-testid': 'pair-source' }, t('from {0}', pair.source)),
      );
    renderMarkdown(this.left, pair.left);
    renderMarkdown(this.right, pair.right);
    for (const text of [this.prompt, this.left, this.right]) text.scrollTop = 0;
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

  private setNotice(paragraphs: HTMLElement[], action?: { command: ViewCommand; text: string }): void {
    const children: HTMLElement[] = [...paragraphs];
    if (action) children.push(this.commandButton(action, 'notice-action'));
    this.notice.replaceChildren(...children);
    this.show(this.notice, children.length > 0);
  }

  private commandButton(action: { command: ViewCommand; text: string }, testId: string): HTMLElement {
    const button = h('vscode-button', { 'data-testid': testId }, action.text);
    button.addEventListener('click', () => this.events.run(action.command));
    return button;
  }

  /** In Restricted Mode the banner says why nothing can be labeled, and the controls that write are off. */
  private setRestricted(restricted: boolean): void {
    this.restricted = restricted;
    this.show(this.restrictedBanner, restricted);
    for (const control of [...this.choiceButtons, this.rationale]) setDisabled(control, restricted);
    this.ranking.setDisabled(restricted);
  }

  /** The problems, one line until opened; open when there is no queue to show beside them. */
  private setProblems(problems: string[], open: boolean): void {
    this.problemList.replaceChildren(...problems.map((p) => h('li', {}, p)));
    const more = problems.length > 1 ? ` (+${problems.length - 1} more)` : '';
    this.problemSummary.replaceChildren(icon('warning'), ` ${problems[0] ?? ''}`, h('span', { class: 'more' }, more));
    this.problemSummary.title = problems.join('\n');
    if (open) (this.problems as HTMLDetailsElement).open = true;
    this.show(this.problems, problems.length > 0);
  }

  private show(element: HTMLElement, visible: boolean): void {
    element.hidden = !visible;
  }
}

/**
 * The labeling view's DOM, built once and updated in place, so focus stays where the person left
 * it while pairs come and go. Every control has an accessible name and a data-testid.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { Choice, LabelingMode, ShownPair, ViewCommand, ViewSection, ViewState } from '../../src/protocol/labeling';
import { h, icon, keyHint, setDisabled } from './dom';
import { RankingPanel, Ranks } from './ranking';
import { ModelPanel } from './margins';
import { HeaderEvents, ViewHeader } from './header';
import { PairPanel } from './pair';
import { CHOICES } from './choices';
import { t, tNodes } from '../shared/l10n';

export interface ViewEvents extends HeaderEvents {
  choose(choice: Choice): void;
  undo(): void;
  rationaleChanged(text: string): void;
  /** Shows this pair instead of the next unlabeled one (a labeled one to re-check); none: back to the queue. */
  openPair(pairId?: string): void;
  rank(pairIds: string[], ranks: Ranks | 'skip'): void;
  setMode(mode: LabelingMode): void;
}

export type Section = ViewSection;

export type SaveStatus =
  { kind: 'idle' } | { kind: 'saving' } | { kind: 'saved'; text: string } | { kind: 'failed'; error: string };

export class LabelingView {
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
  private readonly header: ViewHeader;
  private readonly pair: PairPanel;
  /** The reward model's view of the labels (margins.ts). */
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
  /** The choices and undo, in three columns; the choices hide when no pair is shown, undo stays. */
  private readonly choices = h(
    'div',
    { class: 'choices', role: 'group', 'aria-label': t('Which response is better?') },
    ...this.choiceButtons,
    this.undoButton,
  );
  private readonly footer = h('footer', { class: 'footer' }, this.saveStatus, this.modeToggle);
  /** Restricted Mode: the choices, undo and rationale stay disabled. */
  private restricted = false;

  constructor(
    root: HTMLElement,
    private readonly events: ViewEvents,
  ) {
    this.header = new ViewHeader(events);
    this.pair = new PairPanel({
      rationaleChanged: (text) => events.rationaleChanged(text),
      leaveRationale: () => this.choiceButtons[0].focus(),
    });
    this.model = new ModelPanel(events);
    root.append(
      h(
        'main',
        {},
        this.header.element,
        this.restrictedBanner,
        this.problems,
        this.notice,
        ...this.header.sections,
        this.model.reviewBanner,
        this.pair.element,
        this.ranking.element,
        this.choices,
        this.model.element,
        this.footer,
      ),
    );
    for (const button of this.choiceButtons)
      button.addEventListener('click', () => events.choose(button.dataset.choice as Choice));
    this.undoButton.addEventListener('click', () => events.undo());
    const parts = [
      this.header.element,
      this.restrictedBanner,
      this.pair.element,
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
    this.show(this.header.element, state.kind === 'queue');
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
      this.header.hideSections();
      this.showPair(undefined, undefined);
      this.show(this.ranking.element, false);
      this.model.render(undefined, undefined);
      this.setProblems(state.problems, true);
      return;
    }
    this.header.render(state);
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
    this.header.openSections(open);
  }

  /** Opens a section (remembered as the toolbar's button would). */
  openSection(section: Section): void {
    this.header.openSection(section);
  }

  /** Opens the Find section and puts the cursor in its text field. */
  openSearch(): void {
    this.header.openSearch();
  }

  get rationaleText(): string {
    return this.pair.rationaleText;
  }

  private showPair(pair: ShownPair | undefined, draft: string | undefined): void {
    this.pair.show(pair, draft);
    for (const button of this.choiceButtons) this.show(button, pair !== undefined);
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
    for (const button of this.choiceButtons) setDisabled(button, restricted);
    this.pair.setDisabled(restricted);
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

/**
 * The labeling webview: shows the pair the host sends, turns buttons and keys into requests, and
 * reports a label as saved only when the host acknowledges it (after the write is on disk).
 */
import '../shared/zod-jitless';
import { Choice, parseToWebview, ToHost, ViewState } from '../../src/protocol/labeling';
import { vscodeApi } from '../shared/vscode';
import { CHOICES } from './choices';
import { LabelingView, Section } from './view';
import type { Ranks } from './ranking';
import { t } from '../shared/l10n';

/** Kept by VS Code across reloads of the page: the rationale being written. */
interface PageState {
  draft?: { pairId: string; rationale: string };
  /** The sections the person left open. */
  open?: Partial<Record<Section, boolean>>;
}

type Pending = { kind: 'label'; choice: Choice } | { kind: 'rank'; skip: boolean } | { kind: 'undo' };

const api = vscodeApi<PageState>();
let pageState: PageState = api.getState() ?? {};
let state: ViewState | undefined;
let nextId = 0;
const pending = new Map<number, Pending>();

const view = new LabelingView(document.body, {
  choose,
  undo,
  selectQueue: (queue) => post({ type: 'selectQueue', queue }),
  run: (command) => post({ type: 'runCommand', command }),
  rationaleChanged: (rationale) => {
    const pairId = currentPair()?.pairId;
    if (pairId) savePageState({ ...pageState, draft: { pairId, rationale } });
  },
  find: (text, status) => post({ type: 'find', text, status }),
  openPair: (pairId) => post({ type: 'openPair', ...(pairId ? { pairId } : {}) }),
  rank,
  setMode: (mode) => post({ type: 'setMode', mode }),
  sectionToggled: (section, open) => savePageState({ ...pageState, open: { ...pageState.open, [section]: open } }),
});
view.openSections(pageState.open ?? {});

function post(message: ToHost): void {
  api.postMessage(message);
}

function savePageState(next: PageState): void {
  pageState = next;
  api.setState(pageState);
}

function currentPair() {
  return state?.kind === 'queue' ? state.pair : undefined;
}

function busy(): boolean {
  return pending.size > 0;
}

/** Restricted Mode: the queue shows, and nothing is sent that would write. */
function restricted(): boolean {
  return state?.kind === 'queue' && state.restricted;
}

function choose(choice: Choice): void {
  const pair = currentPair();
  if (!pair || busy() || restricted()) return;
  const id = nextId++;
  pending.set(id, { kind: 'label', choice });
  view.setSaveStatus({ kind: 'saving' });
  const rationale = view.rationaleText.trim();
  post({ type: 'label', id, pairId: pair.pairId, choice, ...(rationale ? { rationale } : {}) });
}

function rank(pairIds: string[], ranks: Ranks | 'skip'): void {
  if (state?.kind !== 'queue' || !state.ranking || busy() || restricted()) return;
  const id = nextId++;
  pending.set(id, { kind: 'rank', skip: ranks === 'skip' });
  view.setSaveStatus({ kind: 'saving' });
  post({ type: 'rank', id, pairIds, ranks });
}

function undo(): void {
  if (state?.kind !== 'queue' || !state.canUndo || busy() || restricted()) return;
  const id = nextId++;
  pending.set(id, { kind: 'undo' });
  view.setSaveStatus({ kind: 'saving' });
  post({ type: 'undo', id });
}

let lastLayout = '';

/** Tells the host the view's size and whether its content fits without scrolling, when either changed. */
function reportLayout(): void {
  const root = document.documentElement;
  const fits = root.scrollHeight <= window.innerHeight + 1 && root.scrollWidth <= window.innerWidth + 1;
  const layout = { width: window.innerWidth, height: window.innerHeight, fits };
  const key = JSON.stringify(layout);
  if (key === lastLayout) return;
  lastLayout = key;
  post({ type: 'layout', ...layout });
}

window.addEventListener('message', (event: MessageEvent) => {
  const parsed = parseToWebview(event.data);
  if (!parsed.ok) {
    console.warn(`Labeling view: ignored a message that is not in the protocol (${parsed.error})`);
    return;
  }
  const message = parsed.value;
  if (message.type === 'openSection') {
    view.openSection(message.section);
    return;
  }
  if (message.type === 'state') {
    state = message.state;
    view.render(state, pageState.draft);
    requestAnimationFrame(reportLayout);
    return;
  }
  const request = pending.get(message.id);
  if (!request) return;
  pending.delete(message.id);
  if (!message.ok) {
    view.setSaveStatus({ kind: 'failed', error: message.error ?? t('Not saved.') });
    return;
  }
  if (request.kind === 'label') savePageState({ open: pageState.open });
  view.setSaveStatus({ kind: 'saved', text: savedText(request) });
});

function savedText(request: Pending): string {
  if (request.kind === 'undo') return t('Undone');
  if (request.kind === 'rank') return request.skip ? t('Saved: prompt skipped') : t('Saved: ranking');
  return t('Saved: {0}', CHOICES.find((c) => c.choice === request.choice)!.text);
}

/** Keys act on the pair unless the person is typing (rationale) or choosing (queue picker). */
function isTyping(event: KeyboardEvent): boolean {
  return event
    .composedPath()
    .some(
      (target) =>
        target instanceof HTMLElement &&
        (target.isContentEditable ||
          /^(INPUT|TEXTAREA|SELECT|VSCODE-TEXTAREA|VSCODE-TEXTFIELD|VSCODE-SINGLE-SELECT)$/.test(target.tagName)),
    );
}

document.addEventListener('keydown', (event) => {
  if (event.defaultPrevented || event.isComposing || event.altKey || event.repeat || isTyping(event)) return;
  const key = event.key.toLowerCase();
  const command = event.ctrlKey || event.metaKey;
  if ((command && key === 'z' && !event.shiftKey) || (!command && key === 'u')) {
    event.preventDefault();
    undo();
    return;
  }
  if (!command && key === '/') {
    event.preventDefault();
    view.openSearch();
    return;
  }
  const choice = command ? undefined : CHOICES.find((c) => c.key === key);
  if (choice) {
    event.preventDefault();
    choose(choice.choice);
  }
});

post({ type: 'ready' });
window.addEventListener('resize', reportLayout);

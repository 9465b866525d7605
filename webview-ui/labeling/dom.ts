/**
 * Small DOM helpers of the labeling view: elements with attributes, codicons, key hints, and the
 * toolbar's toggles that open and close a section of the view.
 */

import type { ShownPair } from '../../src/protocol/labeling';
import { renderMarkdown } from './markdown';

type Attributes = Record<string, string | boolean>;

/** An element with attributes (true: present, false: absent) and children. */
export function h<K extends string>(tag: K, attributes: Attributes = {}, ...children: (Node | string)[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== false) element.setAttribute(name, value === true ? '' : value);
  }
  element.append(...children);
  return element;
}

export function keyHint(key: string): HTMLElement {
  return h('kbd', { 'aria-hidden': 'true' }, key.toUpperCase());
}

export function setDisabled(element: HTMLElement, disabled: boolean): void {
  (element as HTMLElement & { disabled: boolean }).disabled = disabled;
}

export function icon(name: string): HTMLElement {
  return h('span', { class: `codicon codicon-${name}`, 'aria-hidden': 'true' });
}

/** A prompt: Markdown text, or a conversation's turns, each with its role. */
export function renderPrompt(element: HTMLElement, prompt: ShownPair['prompt']): void {
  if (typeof prompt === 'string') {
    renderMarkdown(element, prompt);
    return;
  }
  element.replaceChildren(
    ...prompt.map((turn) => {
      const body = h('div', { class: 'turn-body' });
      renderMarkdown(body, turn.content);
      return h('div', { class: 'turn' }, h('div', { class: 'turn-role' }, turn.role), body);
    }),
  );
}

/** A toolbar button showing only its codicon, named for screen readers and in its tooltip. */
export function toolButton(name: string, codicon: string, testId: string): HTMLElement {
  return h(
    'vscode-button',
    { secondary: true, 'icon-only': true, title: name, 'aria-label': name, 'data-testid': testId },
    icon(codicon),
  );
}

/** A toolbar button that opens and closes `section` (closed at first), saying which in aria-expanded. */
export class SectionToggle {
  readonly button: HTMLElement;

  constructor(
    readonly section: HTMLElement,
    options: { name: string; codicon: string; testId: string },
    private readonly toggled: (open: boolean) => void,
  ) {
    this.button = toolButton(options.name, options.codicon, options.testId);
    this.button.setAttribute('aria-controls', section.id);
    this.button.addEventListener('click', () => {
      this.set(section.hidden);
      this.toggled(!section.hidden);
    });
    this.set(false);
  }

  get open(): boolean {
    return !this.section.hidden;
  }

  set(open: boolean): void {
    this.section.hidden = !open;
    this.button.setAttribute('aria-expanded', String(open));
  }
}

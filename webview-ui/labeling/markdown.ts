/**
 * Model output and guidelines as Markdown, safely: markdown-it leaves raw HTML as text and
 * DOMPurify removes anything executable that could still get through. Images are off: they would
 * only load from elsewhere, which the CSP blocks anyway.
 */
import DOMPurify from 'dompurify';
import MarkdownIt from 'markdown-it';

const markdown = new MarkdownIt({ html: false, linkify: false, breaks: true }).disable('image');

/** Fills `element` with `text` rendered as sanitised Markdown. */
export function renderMarkdown(element: HTMLElement, text: string): void {
  element.innerHTML = DOMPurify.sanitize(markdown.render(text));
}

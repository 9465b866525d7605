/// <reference lib="dom" />
/**
 * Runs a webview bundle in a real browser, outside VS Code: the page gets the same strict CSP as
 * in VS Code and a stub of `acquireVsCodeApi` that records what the page posts and keeps its state.
 * Tests skip with a message where no Chromium is installed (`apt-get install chromium`, or set
 * CHROMIUM_PATH).
 */
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as path from 'path';
import { Browser, chromium, Page } from 'playwright-core';
import { l10nScript } from '../../src/views/l10nScript';

const ROOT = path.resolve(__dirname, '..', '..');
const ORIGIN = 'https://webview.test';
const NONCE = 'test-nonce';

export const CHROMIUM = [
  process.env.CHROMIUM_PATH,
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
].find((p): p is string => !!p && fs.existsSync(p));

/** For `test(..., { skip })`: why browser tests cannot run here, or false. */
export const noBrowser = CHROMIUM
  ? false
  : 'no Chromium found: install it (apt-get install chromium) or set CHROMIUM_PATH';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const bundles = new Map<string, Promise<string>>();

/** webview-ui/<name>/main.ts bundled for the browser, once per test process. */
function bundle(name: string): Promise<string> {
  if (!bundles.has(name)) {
    bundles.set(
      name,
      esbuild
        .build({
          entryPoints: [path.join(ROOT, 'webview-ui', name, 'main.ts')],
          bundle: true,
          write: false,
          format: 'iife',
          target: 'es2022',
          sourcemap: 'inline',
        })
        .then((r) => r.outputFiles[0].text),
    );
  }
  return bundles.get(name)!;
}

/** The files a page may load, as dist/webview/ holds them after a build. */
function assets(name: string): Record<string, string> {
  return {
    'codicon.css': 'node_modules/@vscode/codicons/dist/codicon.css',
    'codicon.ttf': 'node_modules/@vscode/codicons/dist/codicon.ttf',
    'uPlot.min.css': 'node_modules/uplot/dist/uPlot.min.css',
    [`${name}.css`]: `webview-ui/${name}/style.css`,
  };
}

export interface WebviewPage {
  page: Page;
  /** Messages the page posted to the host, in order. */
  posted(): Promise<unknown[]>;
  /** Delivers a message from the host, as VS Code does. */
  send(message: unknown): Promise<void>;
  /** What the page last passed to setState. */
  state(): Promise<unknown>;
  /** Content Security Policy violations seen so far. */
  cspViolations(): Promise<string[]>;
  close(): Promise<void>;
}

export interface PageOptions {
  /** Extra stylesheets, as in webviewHtml's `styles`. */
  styles?: string[];
  /** The state getState() returns at load, as after a reload. */
  state?: unknown;
  /** Viewport width in pixels (the sidebar is narrow, a panel wide). */
  width?: number;
  height?: number;
  /** The font VS Code's default theme sets on a webview (13 px), for tests that measure layout. */
  workbenchFont?: boolean;
  /** The display language's messages, as vscode.l10n.bundle holds them (none: English). */
  l10n?: Record<string, string>;
}

/** The variables VS Code sets on a webview's root for its default font. */
const WORKBENCH_FONT =
  ':root { --vscode-font-family: system-ui, sans-serif; --vscode-font-size: 13px; --vscode-editor-font-size: 14px; }';

let browser: Promise<Browser> | undefined;

function launch(): Promise<Browser> {
  browser ??= chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  return browser;
}

/** Closes the shared browser; call from an `after` hook. */
export async function closeBrowser(): Promise<void> {
  if (browser) await (await browser).close();
  browser = undefined;
}

export async function openWebview(name: string, options: PageOptions = {}): Promise<WebviewPage> {
  const script = await bundle(name);
  const files = assets(name);
  const context = await (
    await launch()
  ).newContext({ viewport: { width: options.width ?? 1000, height: options.height ?? 800 } });
  const page = await context.newPage();
  await page.route(`${ORIGIN}/**`, async (route) => {
    const file = new URL(route.request().url()).pathname.slice(1);
    if (file === 'index.html') return route.fulfill({ contentType: 'text/html', body: html(name, options) });
    if (file === `${name}.js`) return route.fulfill({ contentType: 'text/javascript', body: script });
    if (file in files) return route.fulfill({ path: path.join(ROOT, files[file]) });
    return route.fulfill({ status: 404, body: '' });
  });
  // Functions sent to the page are serialized from source, which tsx (keepNames) wraps in __name().
  await page.addInitScript('globalThis.__name ??= (fn) => fn;');
  await page.addInitScript((initial) => {
    const w = window as unknown as Record<string, unknown>;
    w.__posted = [];
    w.__state = initial;
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      (w.__csp as string[]).push(`${e.violatedDirective}: ${e.blockedURI}`),
    );
    w.acquireVsCodeApi = () => ({
      postMessage: (m: unknown) => (w.__posted as unknown[]).push(JSON.parse(JSON.stringify(m))),
      getState: () => w.__state,
      setState: (s: unknown) => {
        w.__state = JSON.parse(JSON.stringify(s));
      },
    });
  }, options.state);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${ORIGIN}/index.html`);
  if (errors.length) throw new Error(`the page threw: ${errors.join('; ')}`);
  return {
    page,
    posted: () => page.evaluate(() => (window as unknown as { __posted: unknown[] }).__posted),
    send: (message) => page.evaluate((m) => window.postMessage(m, '*'), message),
    state: () => page.evaluate(() => (window as unknown as { __state: unknown }).__state),
    cspViolations: () => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp),
    close: () => context.close(),
  };
}

/** The production shell's CSP (src/views/webviewHtml.ts), with the test origin as the webview's. */
function html(name: string, options: PageOptions): string {
  const csp = [
    "default-src 'none'",
    `img-src ${ORIGIN} data: blob:`,
    `font-src ${ORIGIN}`,
    `style-src ${ORIGIN} 'nonce-${NONCE}'`,
    `script-src 'nonce-${NONCE}'`,
  ].join('; ');
  const styles = [...(options.styles ?? []), `${name}.css`]
    .map((f) => `<link rel="stylesheet" href="${ORIGIN}/${f}" nonce="${NONCE}">`)
    .join('\n');
  const font = options.workbenchFont ? `<style nonce="${NONCE}">${WORKBENCH_FONT}</style>` : '';
  return `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
${font}${styles}<title>${name}</title></head>
<body>${options.l10n ? l10nScript(NONCE, options.l10n) : ''}<script nonce="${NONCE}" src="${ORIGIN}/${name}.js"></script></body></html>`;
}

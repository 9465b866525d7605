/**
 * The HTML shell of every webview: a strict Content Security Policy with a per-load nonce (no
 * inline code, no eval), scripts and styles only from the extension's dist/ folder, and the
 * display language's messages.
 */
import * as crypto from 'crypto';
import * as vscode from 'vscode';
import { l10nScript } from './l10nScript';

/** Webviews may load files from these folders of the extension and nowhere else. */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

export interface PageParts {
  title: string;
  /** The bundle's name in dist/webview/ (`labeling` loads labeling.js and labeling.css). */
  bundle: string;
  /** Extra stylesheets in dist/webview/, loaded before the bundle's own. */
  styles?: string[];
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, page: PageParts): string {
  const nonce = crypto.randomBytes(16).toString('base64');
  const asset = (file: string) =>
    webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', file)).toString();
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data: blob:`,
    `font-src ${webview.cspSource}`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  const styles = [...(page.styles ?? []), `${page.bundle}.css`].map(
    (file) => `<link rel="stylesheet" href="${asset(file)}" nonce="${nonce}">`,
  );
  return `<!DOCTYPE html>
<html lang="${escapeHtml(vscode.env.language)}">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${styles.join('\n')}
<title>${escapeHtml(page.title)}</title>
</head>
<body>
${l10nScript(nonce, vscode.l10n.bundle ?? {})}
<script nonce="${nonce}" src="${asset(`${page.bundle}.js`)}"></script>
</body>
</html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The display language's messages for a webview's `t` (webview-ui/shared/l10n.ts): JSON in the
 * page that does not run and cannot end its script element early.
 */
export function l10nScript(nonce: string, bundle: Record<string, string>): string {
  const json = JSON.stringify(bundle).replace(/</g, '\\u003c');
  return `<script type="application/json" id="l10n" nonce="${nonce}">${json}</script>`;
}

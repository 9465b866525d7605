/**
 * The webviews' strings in VS Code's display language: the extension host puts its l10n bundle
 * (vscode.l10n.bundle) in the page as JSON (src/views/webviewHtml.ts), and `t` looks each English
 * message up in it, with {0}, {1}… filled in, as vscode.l10n.t does in the host.
 */
let bundle: Record<string, string> | undefined;

function messages(): Record<string, string> {
  if (bundle) return bundle;
  try {
    bundle = JSON.parse(document.getElementById('l10n')?.textContent || '{}') as Record<string, string>;
  } catch {
    bundle = {};
  }
  return bundle;
}

export function t(message: string, ...args: (string | number)[]): string {
  const text = messages()[message] ?? message;
  return text.replace(/\{(\d+)\}/g, (hole, i: string) => (i in args ? String(args[Number(i)]) : hole));
}

/** A translated message whose {0}, {1}… are elements (code, links), as nodes to append. */
export function tNodes(message: string, ...nodes: Node[]): (Node | string)[] {
  return t(message)
    .split(/(\{\d+\})/)
    .map((part) => {
      const hole = /^\{(\d+)\}$/.exec(part);
      return hole && nodes[Number(hole[1])] ? nodes[Number(hole[1])] : part;
    })
    .filter((part) => part !== '');
}

/**
 * A minimal stand-in for the `vscode` module, enough to activate the extension and drive its
 * command handlers in plain Node. Importing this file installs it: later `require('vscode')` calls
 * get it. Dialogs answer from `ui.answers` (in order), every message shown is kept in `ui.shown`,
 * and progress notifications report into `ui.progress`.
 */
import * as path from 'path';
const Module = require('module') as { _load: (request: string, ...rest: unknown[]) => unknown };

type Listener<T> = (e: T) => unknown;

class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  readonly event = (listener: Listener<T>) => {
    this.listeners.push(listener);
    return new Disposable(() => (this.listeners = this.listeners.filter((l) => l !== listener)));
  };
  fire(e: T): void {
    for (const l of this.listeners) l(e);
  }
  dispose(): void {
    this.listeners = [];
  }
}

class Disposable {
  constructor(private readonly onDispose: () => void = () => {}) {}
  dispose(): void {
    this.onDispose();
  }
}

class Uri {
  private constructor(
    readonly fsPath: string,
    readonly scheme = 'file',
  ) {}
  static file(p: string): Uri {
    return new Uri(path.resolve(p));
  }
  get path(): string {
    return this.fsPath;
  }
}

class TreeItem {
  id?: string;
  description?: string;
  iconPath?: unknown;
  tooltip?: unknown;
  contextValue?: string;
  constructor(
    readonly label: string,
    readonly collapsibleState?: number,
  ) {}
}

class ThemeIcon {
  constructor(
    readonly id: string,
    readonly color?: unknown,
  ) {}
}
class ThemeColor {
  constructor(readonly id: string) {}
}
class MarkdownString {
  value = '';
  constructor(
    value = '',
    readonly supportThemeIcons = false,
  ) {
    this.value = value;
  }
  appendMarkdown(s: string) {
    this.value += s;
    return this;
  }
  appendText(s: string) {
    this.value += s;
    return this;
  }
  appendCodeblock(s: string) {
    this.value += `\n\`\`\`\n${s}\n\`\`\`\n`;
    return this;
  }
}

export interface Shown {
  kind: 'info' | 'warning' | 'error';
  message: string;
  items: string[];
}

/** What the fake UI showed, and what it will answer next. */
export const ui = {
  shown: [] as Shown[],
  /** Answers for the next dialogs (message buttons, quick picks by label prefix, input boxes), in order. */
  answers: [] as (string | undefined)[],
  executed: [] as { command: string; args: unknown[] }[],
  opened: [] as string[],
  /** The messages progress notifications reported. */
  progress: [] as string[],
  /** Presses Cancel on every cancellable progress notification shown since the last reset. */
  cancelProgress(): void {
    for (const cancel of cancels) cancel();
  },
  reset(): void {
    this.shown = [];
    this.answers = [];
    this.executed = [];
    this.opened = [];
    this.progress = [];
    cancels.length = 0;
  },
};
const cancels: (() => void)[] = [];

const commands = new Map<string, (...args: unknown[]) => unknown>();
const settings: Record<string, unknown> = {};
const folders: { uri: Uri; name: string; index: number }[] = [];
const trust = { isTrusted: true };

function message(kind: Shown['kind']) {
  return async (text: string, ...rest: unknown[]) => {
    const items = rest.filter((r): r is string => typeof r === 'string');
    ui.shown.push({ kind, message: text, items });
    const answer = ui.answers.shift();
    return items.includes(answer as string) ? answer : undefined;
  };
}

function logChannel(name: string) {
  const lines: string[] = [];
  const log = (level: string) => (text: string) => void lines.push(`${level} ${text}`);
  return {
    name,
    lines,
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    trace: log('trace'),
    debug: log('debug'),
    append() {},
    appendLine() {},
    show() {},
    hide() {},
    clear() {},
    dispose() {},
  };
}

/** vscode.l10n.t in English: the message with {0}, {1}… filled in. */
function translate(message: string, ...args: unknown[]): string {
  return message.replace(/\{(\d+)\}/g, (hole, i: string) => (i in args ? String(args[Number(i)]) : hole));
}

export const vscode = {
  l10n: { bundle: undefined, t: translate },
  env: { language: 'en' },
  EventEmitter,
  Disposable,
  Uri,
  TreeItem,
  ThemeIcon,
  ThemeColor,
  MarkdownString,
  TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
  StatusBarAlignment: { Left: 1, Right: 2 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  window: {
    activeTextEditor: undefined as undefined | { document: { uri: Uri } },
    createOutputChannel: (name: string) => logChannel(name),
    createStatusBarItem: () => ({
      text: '',
      tooltip: '',
      name: '',
      command: '',
      visible: false,
      show() {
        this.visible = true;
      },
      hide() {
        this.visible = false;
      },
      dispose() {},
    }),
    registerTreeDataProvider: () => new Disposable(),
    registerWebviewPanelSerializer: () => new Disposable(),
    registerWebviewViewProvider: () => new Disposable(),
    showInformationMessage: message('info'),
    showWarningMessage: message('warning'),
    showErrorMessage: message('error'),
    async showQuickPick<T extends { label: string }>(items: T[]): Promise<T | undefined> {
      const answer = ui.answers.shift();
      return items.find((i) => answer !== undefined && i.label.includes(answer));
    },
    async showInputBox(options: {
      value?: string;
      validateInput?: (v: string) => string | undefined;
    }): Promise<string | undefined> {
      const answer = ui.answers.shift() ?? options.value;
      return answer !== undefined && options.validateInput?.(answer) ? undefined : answer;
    },
    async showWorkspaceFolderPick() {
      return folders[0];
    },
    async showOpenDialog() {
      return undefined;
    },
    /** Answers with the next answer as a file path. */
    async showSaveDialog() {
      const answer = ui.answers.shift();
      return answer === undefined ? undefined : Uri.file(answer);
    },
    async showTextDocument(doc: Uri | { uri: Uri }) {
      ui.opened.push('fsPath' in doc ? doc.fsPath : doc.uri.fsPath);
    },
    async withProgress<R>(
      _options: unknown,
      task: (progress: { report(v: { message?: string }): void }, token: unknown) => Promise<R>,
    ): Promise<R> {
      const cancelled = new EventEmitter<void>();
      const token = { isCancellationRequested: false, onCancellationRequested: cancelled.event };
      cancels.push(() => {
        token.isCancellationRequested = true;
        cancelled.fire();
      });
      return task({ report: (v) => v.message && ui.progress.push(v.message) }, token);
    },
  },
  workspace: {
    get isTrusted() {
      return trust.isTrusted;
    },
    get workspaceFolders() {
      return folders.length ? folders : undefined;
    },
    getWorkspaceFolder: (uri: Uri) => folders.find((f) => uri.fsPath.startsWith(f.uri.fsPath + path.sep)),
    getConfiguration: (section: string) => ({
      get: <T>(key: string, fallback?: T) => (settings[`${section}.${key}`] as T) ?? fallback,
      inspect: (key: string) => ({ key, globalValue: settings[`${section}.${key}`] }),
    }),
    onDidChangeWorkspaceFolders: () => new Disposable(),
    onDidChangeConfiguration: () => new Disposable(),
    createFileSystemWatcher: () => ({
      onDidCreate: () => new Disposable(),
      onDidChange: () => new Disposable(),
      onDidDelete: () => new Disposable(),
      dispose() {},
    }),
    findFiles: async () => [] as Uri[],
    asRelativePath: (p: string) => p,
    openTextDocument: async (doc: { content: string }) => ({ uri: Uri.file('/untitled'), getText: () => doc.content }),
    registerTextDocumentContentProvider: () => new Disposable(),
  },
  commands: {
    registerCommand(id: string, handler: (...args: unknown[]) => unknown) {
      if (commands.has(id)) throw new Error(`command ${id} registered twice`);
      commands.set(id, handler);
      return new Disposable(() => commands.delete(id));
    },
    async executeCommand(command: string, ...args: unknown[]) {
      ui.executed.push({ command, args });
      return commands.get(command)?.(...args);
    },
  },
};

/** Test controls for the fake workbench. */
export const workbench = {
  commands,
  settings,
  setTrusted(trusted: boolean): void {
    trust.isTrusted = trusted;
  },
  setFolders(paths: string[]): void {
    folders.splice(
      0,
      folders.length,
      ...paths.map((p, index) => ({ uri: Uri.file(p), name: path.basename(p), index })),
    );
  },
  /** A context like the one VS Code passes to activate(). */
  context(extensionPath: string) {
    const state = new Map<string, unknown>();
    const workspaceState = {
      get: (key: string) => state.get(key),
      update: async (key: string, value: unknown) => void state.set(key, value),
      keys: () => [...state.keys()],
    };
    return {
      subscriptions: [] as { dispose(): void }[],
      extensionPath,
      extensionUri: Uri.file(extensionPath),
      workspaceState,
      asAbsolutePath: (p: string) => path.join(extensionPath, p),
    };
  },
};

const load = Module._load;
Module._load = function (request: string, ...rest: unknown[]) {
  return request === 'vscode' ? vscode : load.call(this, request, ...rest);
};

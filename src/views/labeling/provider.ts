/**
 * The Labeling view in the RLHF sidebar: VS Code's side of LabelingSession. The session (and the
 * data modules it reads with) loads when the view is first shown, not at activation.
 */
import * as path from 'path';
import * as os from 'os';
import * as vscode from 'vscode';
import { EXPERIMENT_GLOB, Services } from '../../services';
import { scoreQueue } from '../../runner/runner';
import { runtimeOverrides } from '../../settings';
import { webviewHtml, webviewOptions } from '../webviewHtml';
import type { LabelingMode, ToWebview, ViewLayout } from '../../protocol/labeling';
import type { ExperimentFile } from './queues';
import { revealWithRoom, Room } from './room';
import type { LabelingSession } from './session';

export const LABELING_VIEW = 'rlhf.labeling';
const SELECTION_KEY = 'rlhf.labeling.queue';
const HISTORY_KEY = 'rlhf.labeling.history';
const MODE_KEY = 'rlhf.labeling.mode';
/** Files whose changes can change what the view shows: experiments, queues, preferences, guidelines. */
const WATCHED = '**/*.{rlhf.json,jsonl,md}';

/** What Open Labeling needs of the view. */
export interface LabelingView {
  /** Shows the view, giving it more room when what it shows does not fit. */
  reveal(): Promise<Room>;
  /** Shows the view with its statistics open. */
  showStatistics(): Promise<void>;
}

export function registerLabelingView(
  context: vscode.ExtensionContext,
  services: Services,
): { view: LabelingView; disposables: vscode.Disposable[] } {
  const provider = new LabelingViewProvider(context, services);
  return {
    view: provider,
    disposables: [provider, vscode.window.registerWebviewViewProvider(LABELING_VIEW, provider)],
  };
}

class LabelingViewProvider implements vscode.WebviewViewProvider, vscode.Disposable, LabelingView {
  private view: vscode.WebviewView | undefined;
  private session: LabelingSession | undefined;
  private viewSubscriptions: vscode.Disposable | undefined;
  private layout: ViewLayout | undefined;
  private readonly layouts = new vscode.EventEmitter<ViewLayout>();

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly services: Services,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const session = this.startSession();
    const { extensionUri } = this.context;
    view.webview.options = webviewOptions(extensionUri);
    view.webview.html = webviewHtml(view.webview, extensionUri, {
      title: 'Labeling',
      bundle: 'labeling',
      styles: ['codicon.css'],
    });
    const watcher = vscode.workspace.createFileSystemWatcher(WATCHED);
    const refresh = debounce(() => view.visible && void session.refresh({ rescan: true }), 200);
    // Training writes metrics.jsonl in its run folder at every logged step: not a labeling file.
    const changed = (uri: vscode.Uri) => uri.path.includes('/.rlhf/') || refresh();
    const subscriptions = vscode.Disposable.from(
      view.webview.onDidReceiveMessage((message) => session.handle(message)),
      // Trusting the workspace lifts Restricted Mode's read-only view.
      vscode.workspace.onDidGrantWorkspaceTrust(() => void session.refresh()),
      watcher,
      watcher.onDidCreate(changed),
      watcher.onDidChange(changed),
      watcher.onDidDelete(changed),
      // A run that ends may be a new reward model to score the queue with.
      onEnded(this.services, () => view.visible && void session.refresh()),
    );
    this.viewSubscriptions = subscriptions;
    view.onDidDispose(() => {
      subscriptions.dispose();
      if (this.view === view) this.view = undefined;
    });
  }

  reveal(): Promise<Room> {
    return revealWithRoom(
      {
        run: (command, ...args) => vscode.commands.executeCommand(command, ...args),
        lastLayout: () => this.layout,
        nextLayout: (ms) =>
          new Promise((resolve) => {
            const timer = setTimeout(() => {
              listener.dispose();
              resolve(undefined);
            }, ms);
            const listener = this.layouts.event((layout) => {
              clearTimeout(timer);
              listener.dispose();
              resolve(layout);
            });
          }),
      },
      LABELING_VIEW,
    );
  }

  async showStatistics(): Promise<void> {
    await this.reveal();
    await this.view?.webview.postMessage({ type: 'openSection', section: 'statistics' } satisfies ToWebview);
  }

  private startSession(): LabelingSession {
    if (this.session) return this.session;
    // Loaded here so activation does not load the data modules.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { LabelingSession } = require('./session') as typeof import('./session');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { scoringModel } = require('./scoring-model') as typeof import('./scoring-model');
    const state = this.context.workspaceState;
    const { runs, processOptions } = this.services;
    this.session = new LabelingSession({
      post: (message) => void this.view?.webview.postMessage(message),
      warn: (message) => this.services.log.warn(message),
      runCommand: (command, file) =>
        void vscode.commands.executeCommand(command, ...(file ? [vscode.Uri.file(file)] : [])),
      findExperiments: () => findExperiments(),
      isTrusted: () => vscode.workspace.isTrusted,
      selection: { get: () => state.get<string>(SELECTION_KEY), set: (key) => void state.update(SELECTION_KEY, key) },
      history: { get: () => state.get(HISTORY_KEY), set: (history) => void state.update(HISTORY_KEY, history) },
      describe: (file) => vscode.workspace.asRelativePath(file),
      annotator: () => vscode.workspace.getConfiguration('rlhf').get<string>('annotator')?.trim() || userName(),
      mode: {
        get: () =>
          state.get<LabelingMode>(MODE_KEY) ??
          vscode.workspace.getConfiguration('rlhf').get<LabelingMode>('labeling.mode'),
        set: (mode) => void state.update(MODE_KEY, mode),
      },
      checkRate: () => vscode.workspace.getConfiguration('rlhf').get<number>('labeling.checkRate') ?? 0.05,
      layout: (layout) => {
        this.layout = layout;
        this.layouts.fire(layout);
      },
      scoringModel: (file) => {
        const registry = runs.registryFor(vscode.Uri.file(file));
        return registry && scoringModel(registry, file);
      },
      scoreQueue: (model, queue) => {
        const config = vscode.Uri.file(model.configFile);
        const workspaceFolder =
          vscode.workspace.getWorkspaceFolder(config)?.uri.fsPath ?? path.dirname(model.configFile);
        const { configFile, models } = model;
        const dpo = model.stage === 'dpo' ? { dpo: { configFile, workspaceFolder, models } } : {};
        const runtime = runtimeOverrides(config);
        return scoreQueue({ model: model.model, queue, cache: model.cache, runtime, ...dpo }, processOptions);
      },
      order: () =>
        vscode.workspace.getConfiguration('rlhf').get<string>('labeling.order') === 'uncertainty'
          ? 'uncertainty'
          : 'queue',
    });
    return this.session;
  }

  dispose(): void {
    this.viewSubscriptions?.dispose();
    this.layouts.dispose();
  }
}

/** The workspace's experiment files with their workspace folders, sorted by path. */
async function findExperiments(): Promise<ExperimentFile[]> {
  const files = await vscode.workspace.findFiles(EXPERIMENT_GLOB, '**/node_modules/**', 100);
  return files
    .flatMap((uri) => {
      const folder = vscode.workspace.getWorkspaceFolder(uri);
      return folder ? [{ file: uri.fsPath, workspaceFolder: folder.uri.fsPath }] : [];
    })
    .sort((a, b) => a.file.localeCompare(b.file));
}

function onEnded(services: Services, run: () => void): vscode.Disposable {
  services.supervisor.on('ended', run);
  return new vscode.Disposable(() => services.supervisor.off('ended', run));
}

/** The user name on this computer; "" when the system has none for this process. */
function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return '';
  }
}

function debounce(run: () => unknown, ms: number): () => void {
  let timer: NodeJS.Timeout | undefined;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(run, ms);
  };
}

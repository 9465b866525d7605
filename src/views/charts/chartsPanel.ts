/**
 * The Training Charts panel: one webview panel connected to a ChartsStream, and the serializer
 * that brings it back with the same runs after a window reload. The webview keeps its settings
 * (smoothing, x axis, charts) with setState; the runs it shows are part of that state.
 */
import * as vscode from 'vscode';
import { ChartRun, parseChartsState } from '../../protocol/charts';
import { ImportedRun, readImportedMetrics } from '../../runs/imported-metrics';
import { Services } from '../../services';
import { stageLabel } from '../../shared/stages';
import { runTitle } from '../../runs/registry';
import { RunRef } from '../workspaceRuns';
import { webviewHtml, webviewOptions } from '../webviewHtml';
import { ChartsStream, runKey } from './chartsStream';

export const CHARTS_VIEW_TYPE = 'rlhf.charts';

export class ChartsPanel {
  private static current: ChartsPanel | undefined;
  private readonly stream: ChartsStream;

  /** Shows the runs in the panel (opening it if needed): added to those shown, or instead of them. */
  static show(services: Services, refs: RunRef[], mode: 'add' | 'replace'): void {
    const { stream, panel } = ChartsPanel.opened(services);
    if (mode === 'add') stream.add(refs);
    else stream.set(refs);
    panel.reveal();
  }

  /** Shows a run trained elsewhere beside those shown (opening the panel if needed). */
  static showImported(services: Services, imported: ImportedRun): void {
    const { stream, panel } = ChartsPanel.opened(services);
    stream.addImported(imported);
    panel.reveal();
  }

  private static opened(services: Services): ChartsPanel {
    if (!ChartsPanel.current) {
      const panel = vscode.window.createWebviewPanel(
        CHARTS_VIEW_TYPE,
        vscode.l10n.t('Training Charts'),
        vscode.ViewColumn.Active,
      );
      ChartsPanel.current = new ChartsPanel(panel, services, []);
    }
    return ChartsPanel.current;
  }

  /** The runs the open panel shows, for the command's quick pick. */
  static shownKeys(): string[] {
    return ChartsPanel.current?.stream.keys ?? [];
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    services: Services,
    refs: RunRef[],
  ) {
    const extensionUri = vscode.Uri.file(services.extensionPath);
    this.stream = new ChartsStream(services.supervisor, {
      post: (message) => void panel.webview.postMessage(message),
      pickRuns: (shown) => pickChartRuns(services, shown),
      save: saveExport,
      runsChanged: (runs) => (panel.title = panelTitle(runs)),
      warn: (message) => services.log.warn(message),
    });
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, {
      title: vscode.l10n.t('Training Charts'),
      bundle: 'charts',
      styles: ['uPlot.min.css'],
    });
    panel.webview.onDidReceiveMessage((message: unknown) => this.stream.receive(message));
    // A hidden webview is discarded; it reloads when shown and asks for everything again.
    panel.onDidChangeViewState(() => panel.visible || this.stream.detach());
    panel.onDidDispose(() => {
      this.stream.dispose();
      if (ChartsPanel.current === this) ChartsPanel.current = undefined;
    });
    this.stream.add(refs);
  }

  /**
   * Restores a panel after a reload, with the runs its saved state names that still exist: the
   * workspace's, and the metrics files of runs trained elsewhere, read again.
   */
  static revive(panel: vscode.WebviewPanel, services: Services, state: unknown): void {
    const keys = parseChartsState(state)?.runs ?? [];
    const byKey = new Map(services.runs.list().map((ref) => [runKey(ref), ref]));
    const refs = keys.map((key) => byKey.get(key)).filter((ref): ref is RunRef => !!ref);
    ChartsPanel.current?.panel.dispose();
    ChartsPanel.current = new ChartsPanel(panel, services, refs);
    for (const key of keys.filter((k) => !byKey.has(k))) {
      try {
        ChartsPanel.current.stream.addImported(readImportedMetrics(key));
      } catch {
        // the file is gone or no longer reads: the run is no longer shown
      }
    }
  }
}

export function registerChartsSerializer(services: Services): vscode.Disposable {
  return vscode.window.registerWebviewPanelSerializer(CHARTS_VIEW_TYPE, {
    deserializeWebviewPanel: async (panel, state) => ChartsPanel.revive(panel, services, state),
  });
}

/** The workspace's runs to chart, several at once, those shown preselected. */
export async function pickChartRuns(services: Services, shown: string[]): Promise<RunRef[] | undefined> {
  const runs = services.runs.list();
  if (!runs.length) {
    await vscode.window.showInformationMessage(vscode.l10n.t('There are no runs yet.'));
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    runs.map((ref) => ({
      label: runTitle(ref.record),
      description: `${stageLabel(ref.record.stage)} · ${ref.record.status}`,
      detail: ref.record.id,
      picked: shown.includes(runKey(ref)),
      ref,
    })),
    { placeHolder: vscode.l10n.t('Runs to compare: tick each with Space, then Enter'), canPickMany: true },
  );
  return picked?.length ? picked.map((p) => p.ref) : undefined;
}

async function saveExport(fileName: string, contents: Buffer): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const extension = fileName.slice(fileName.lastIndexOf('.') + 1);
  const target = await vscode.window.showSaveDialog({
    defaultUri: folder && vscode.Uri.joinPath(folder, fileName),
    filters: extension === 'png' ? { [vscode.l10n.t('PNG image')]: ['png'] } : { CSV: ['csv'] },
    title: vscode.l10n.t('Export {0}', fileName),
  });
  if (target) await vscode.workspace.fs.writeFile(target, contents);
}

function panelTitle(runs: ChartRun[]): string {
  if (runs.length === 1) return vscode.l10n.t('Charts: {0} ({1})', runs[0].name, stageLabel(runs[0].stage));
  return runs.length ? vscode.l10n.t('Charts: {0} runs', runs.length) : vscode.l10n.t('Training Charts');
}

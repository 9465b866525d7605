/** What the CLI prints: a run's events, download progress; and Ctrl-C, which stops a run after its step. */
import * as path from 'path';
import { DownloadProgress, formatDownload } from '../hub/progress';
import { modelFromHub } from '../hub/resolve';
import { hubSpecOf } from '../hub/spec';
import { RunEvent } from '../protocol/runner';
import { t } from '@vscode/l10n';

export function printEvent(e: RunEvent): void {
  switch (e.type) {
    case 'log':
      console.log(e.level === 'info' ? e.message : `${e.level}: ${e.message}`);
      break;
    case 'metrics':
      console.log(
        `[${e.stage} ${e.step}] ${Object.entries(e.values)
          .map(([k, v]) => `${k} ${formatNumber(v)}`)
          .join('  ')}`,
      );
      break;
    case 'samples':
      console.log(t('--- samples at {0} step {1}', e.stage, e.step));
      for (const r of e.rows) console.log(`  ${r.prompt.trim()}\n    → ${r.response.trim() || t('(nothing)')}`);
      break;
    case 'checkpoint':
      console.log(t('saved {0}', e.path));
      break;
    case 'done':
      console.log(
        e.stopped ? t('stopped at step {0}; resume from the last checkpoint', e.step) : t('done: {0}', e.outputDir),
      );
      if (e.warning) console.warn(t('warning: {0}', e.warning));
      break;
    case 'progress':
      // Training steps show in their metrics; a progress message (sampling comparisons) is all there is.
      if (e.message) console.log(`[${e.stage} ${e.step}/${e.total}] ${e.message}`);
      break;
    case 'download':
      showDownload(e);
      break;
  }
}

/** Download progress on stderr: one line rewritten in a terminal, else a line per tenth done. */
export function downloadPrinter(): (p: DownloadProgress) => void {
  let shown = -1;
  return (p) => {
    const tenth = Math.floor((10 * p.received) / Math.max(p.total, 1));
    if (process.stderr.isTTY) process.stderr.write(`\r${formatDownload(p)}\x1b[K${p.received >= p.total ? '\n' : ''}`);
    else if (tenth !== shown) console.error(formatDownload(p));
    shown = tenth;
  };
}

export const showDownload = downloadPrinter();

/** A --model: a folder, or a Hub repo id, fetched into the Hugging Face cache if it is not there. */
export async function modelFolder(spec: string): Promise<string> {
  const hub = hubSpecOf(spec, path.resolve(spec));
  if (!hub) return path.resolve(spec);
  return modelFromHub(hub, { onProgress: showDownload, log: (message) => console.error(message) });
}

export function formatNumber(v: number): string {
  return Math.abs(v) >= 1000 || Number.isInteger(v)
    ? v.toFixed(0)
    : Math.abs(v) < 1e-2
      ? v.toExponential(2)
      : v.toFixed(4);
}

/** Ctrl-C stops a run after the current step and saves a checkpoint; a second Ctrl-C exits. */
export function stopOnInterrupt(): AbortSignal {
  const controller = new AbortController();
  process.on('SIGINT', () => {
    if (controller.signal.aborted) process.exit(130);
    console.log(`\n${t('stopping after this step (Ctrl-C again to quit now)')}`);
    controller.abort();
  });
  return controller.signal;
}

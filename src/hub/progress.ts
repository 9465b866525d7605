/** Download progress: what the CLI prints, the training process sends and VS Code shows. */

export interface DownloadProgress {
  repo: string;
  /** The file being downloaded. */
  file: string;
  /** Bytes of the whole download held so far (resumed parts included). */
  received: number;
  total: number;
  /** Bytes per second fetched since the download started. */
  bytesPerSecond: number;
}

/** "HuggingFaceTB/SmolLM2-135M: 12.5 MB of 269.1 MB (5%) · 4.2 MB/s" */
export function formatDownload(p: DownloadProgress): string {
  const percent = p.total > 0 ? Math.floor((100 * p.received) / p.total) : 100;
  return `${p.repo}: ${formatBytes(p.received)} of ${formatBytes(p.total)} (${percent}%) · ${formatBytes(p.bytesPerSecond)}/s`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  for (; n >= 1000 && i < units.length - 1; i++) n /= 1000;
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${units[i]}`;
}

/** Counts bytes of one download and reports at most every `intervalMs`, and always at the end. */
export class ProgressTracker {
  private received = 0;
  private fresh = 0;
  private file = '';
  private lastReport = 0;
  private readonly started = Date.now();

  constructor(
    private readonly repo: string,
    private readonly total: number,
    private readonly report: (p: DownloadProgress) => void = () => {},
    private readonly intervalMs = 250,
  ) {}

  /** A file starts, `held` of its bytes already on disk from an earlier try. */
  begin(file: string, held: number): void {
    this.file = file;
    this.received += held;
  }

  add(bytes: number): void {
    this.received += bytes;
    this.fresh += bytes;
    if (this.received >= this.total || Date.now() - this.lastReport >= this.intervalMs) this.emit();
  }

  /** The server sent a file from its start where a resume was asked: `bytes` held are rewritten. */
  rewind(bytes: number): void {
    this.received -= bytes;
  }

  private emit(): void {
    this.lastReport = Date.now();
    const seconds = Math.max((this.lastReport - this.started) / 1000, 1e-3);
    const { repo, file, received, total } = this;
    this.report({ repo, file, received, total, bytesPerSecond: this.fresh / seconds });
  }
}

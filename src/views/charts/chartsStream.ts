/**
 * What one charts panel shows and how it stays current: the runs, their buffers, the live events
 * of this window's training processes, the files of runs trained elsewhere (another window, the
 * CLI), and the webview's requests, each validated on arrival. The panel
 * (chartsPanel.ts) only connects this to a webview, so everything here runs in plain Node.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ChartRun, HostMessage, parseViewMessage } from '../../protocol/charts';
import { RunEvent } from '../../protocol/runner';
import { LiveRun, RunSupervisor } from '../../runner/supervisor';
import { ImportedRun } from '../../runs/imported-metrics';
import { RunStatus, runTitle } from '../../runs/registry';
import { RunRef } from '../workspaceRuns';
import { RunBuffer } from './runBuffer';

/** What the stream needs from the workbench. */
export interface ChartsHost {
  /** Delivers a message to the webview. */
  post(message: HostMessage): void;
  /** Asks which runs to show, those shown preselected; undefined when the person cancels. */
  pickRuns(shown: string[]): Promise<RunRef[] | undefined>;
  /** Asks where to save an export and writes it there. */
  save(fileName: string, contents: Buffer): Promise<void>;
  /** Says the runs shown changed (the panel's title follows). */
  runsChanged(runs: ChartRun[]): void;
  warn(message: string): void;
}

/** The folder of a run: the key by which the panel, its saved state and the supervisor know it. */
export const runKey = (ref: RunRef): string => ref.registry.dir(ref.record.id);

const PNG_DATA_URL = /^data:image\/png;base64,([A-Za-z0-9+/]+={0,2})$/;

/** Changes to a followed run's folder within this time are read together. */
const FOLLOW_DELAY_MS = 100;

interface Shown {
  /** None for a run imported from another trainer's file. */
  ref?: RunRef;
  run: ChartRun;
  buffer: RunBuffer;
  /** Watches the folder of a run that another process trains (another window, or the CLI). */
  watcher?: fs.FSWatcher;
}

export class ChartsStream {
  private readonly shown = new Map<string, Shown>();
  /** Whether a page listens: messages to a hidden webview are lost, so it catches up on `ready`. */
  private attached = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly supervisor: RunSupervisor,
    private readonly host: ChartsHost,
  ) {
    // Subscribed before any history is read: the read is synchronous, so no event falls between.
    const onEvent = (live: LiveRun, event: RunEvent) => this.onEvent(live, event);
    const onStatus = (live: LiveRun) => this.onStatus(live);
    supervisor.on('event', onEvent);
    supervisor.on('started', onStatus);
    supervisor.on('ended', onStatus);
    this.unsubscribe = () => {
      supervisor.off('event', onEvent);
      supervisor.off('started', onStatus);
      supervisor.off('ended', onStatus);
    };
  }

  /** The keys of the runs shown, in legend order. */
  get keys(): string[] {
    return [...this.shown.keys()];
  }

  /** Shows these runs too (a run already shown keeps its buffer). */
  add(refs: RunRef[]): void {
    const added = refs.filter((ref) => !this.shown.has(runKey(ref)));
    if (!added.length) return;
    for (const ref of added) {
      const key = runKey(ref);
      const entry: Shown = { ref, run: chartRun(key, ref), buffer: RunBuffer.fromFolder(key) };
      this.shown.set(key, entry);
      if (!this.isLiveHere(key)) this.follow(entry);
    }
    this.runsChanged();
    for (const ref of added) this.sendBuffer(runKey(ref));
  }

  /** Shows a run trained elsewhere, from its metrics file (the file's path is its key). */
  addImported(imported: ImportedRun): void {
    const key = imported.file;
    this.forget(key);
    const buffer = new RunBuffer(key);
    for (const row of imported.rows) buffer.addMetrics(row.step, row.time, row.values);
    const name = `${path.basename(path.dirname(key))}/${path.basename(key)}`;
    this.shown.set(key, { run: { key, name, stage: imported.stage, status: 'finished' }, buffer });
    this.runsChanged();
    this.sendBuffer(key);
  }

  /** Shows exactly these runs of the workspace (and the imported ones shown). */
  set(refs: RunRef[]): void {
    const keep = new Set(refs.map(runKey));
    for (const [key, entry] of this.shown) if (entry.ref && !keep.has(key)) this.forget(key);
    if (refs.every((ref) => this.shown.has(runKey(ref)))) this.runsChanged();
    else this.add(refs);
  }

  remove(key: string): void {
    if (this.forget(key)) this.runsChanged();
  }

  /** The webview went away (hidden or reloading); it asks for everything again when it is back. */
  detach(): void {
    this.attached = false;
  }

  /** A message from the webview: validated, then acted on; a bad one is logged and dropped. */
  async receive(message: unknown): Promise<void> {
    const parsed = parseViewMessage(message);
    if (!parsed.ok) return this.host.warn(`charts: ignored a message from the webview (${parsed.error})`);
    const m = parsed.value;
    switch (m.type) {
      case 'ready':
        this.attached = true;
        this.runsChanged();
        for (const key of this.shown.keys()) this.sendBuffer(key);
        return;
      case 'pickRuns': {
        const refs = await this.host.pickRuns(this.keys);
        if (refs) this.set(refs);
        return;
      }
      case 'removeRun':
        return this.remove(m.run);
      case 'export': {
        const contents = m.format === 'csv' ? Buffer.from(m.data, 'utf8') : pngBytes(m.data);
        if (!contents) return this.host.warn('charts: ignored an export that is not a PNG data URL');
        return this.host.save(safeFileName(m.fileName, m.format), contents);
      }
    }
  }

  dispose(): void {
    this.unsubscribe();
    for (const key of this.keys) this.forget(key);
  }

  private onEvent(live: LiveRun, event: RunEvent): void {
    const entry = this.shown.get(live.dir);
    if (!entry) return;
    if (event.type === 'metrics') {
      const points = entry.buffer.addMetrics(event.step, event.time ?? Date.now() / 1000, event.values);
      if (points) this.post(points);
    } else if (event.type === 'samples') {
      const group = entry.buffer.addSamples(event.step, event.rows);
      if (group) this.post({ type: 'samples', run: live.dir, groups: [group] });
    }
  }

  /** A run of this window started or ended: its events take over from its files, or hand back to them. */
  private onStatus(live: LiveRun): void {
    const entry = this.shown.get(live.dir);
    if (!entry) return;
    if (live.record.status === 'running') this.unfollow(entry);
    else this.follow(entry);
    this.setStatus(entry, live.record.status);
  }

  private setStatus(entry: Shown, status: RunStatus): void {
    if (entry.run.status === status) return;
    entry.run = { ...entry.run, status };
    this.runsChanged();
  }

  private isLiveHere(key: string): boolean {
    return this.supervisor.runs().some((live) => live.dir === key);
  }

  /**
   * Follows a run that no process of this window trains, through its folder: what its trainer
   * appends to the metrics and samples files, and its status in run.json (file events, no polling).
   */
  private follow(entry: Shown): void {
    const ref = entry.ref;
    if (entry.watcher || !ref) return;
    let timer: NodeJS.Timeout | undefined;
    const catchUp = () => {
      timer = undefined;
      for (const message of entry.buffer.catchUp()) this.post(message);
      const record = ref.registry.get(ref.record.id);
      if (record) this.setStatus(entry, record.status);
    };
    try {
      entry.watcher = fs.watch(entry.run.key, () => (timer ??= setTimeout(catchUp, FOLLOW_DELAY_MS)));
      entry.watcher.on('error', () => this.unfollow(entry)); // the folder was deleted
      entry.watcher.on('close', () => clearTimeout(timer));
    } catch {
      return; // no folder: nothing to follow
    }
    catchUp(); // what changed before the watch began
  }

  private unfollow(entry: Shown): void {
    entry.watcher?.close();
    entry.watcher = undefined;
  }

  private forget(key: string): boolean {
    const entry = this.shown.get(key);
    if (entry) this.unfollow(entry);
    return this.shown.delete(key);
  }

  private runsChanged(): void {
    const runs = [...this.shown.values()].map((e) => e.run);
    this.host.runsChanged(runs);
    this.post({ type: 'runs', runs });
  }

  private sendBuffer(key: string): void {
    const entry = this.shown.get(key);
    if (!entry) return;
    this.post(entry.buffer.points(0));
    this.post({ type: 'samples', run: key, groups: entry.buffer.sampleGroups() });
  }

  private post(message: HostMessage): void {
    if (this.attached) this.host.post(message);
  }
}

function chartRun(key: string, { record }: RunRef): ChartRun {
  return { key, name: runTitle(record), stage: record.stage, status: record.status };
}

function pngBytes(dataUrl: string): Buffer | undefined {
  const match = PNG_DATA_URL.exec(dataUrl);
  return match ? Buffer.from(match[1], 'base64') : undefined;
}

/** The webview proposes a name; only a plain file name with the format's extension is kept. */
function safeFileName(proposed: string, format: string): string {
  const base =
    proposed
      .replace(/\.[a-z]+$/i, '')
      .replace(/[^\w.-]+/g, '-')
      .replace(/^[.-]+/, '') || 'chart';
  return `${base}.${format}`;
}

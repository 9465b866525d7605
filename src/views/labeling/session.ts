/**
 * The labeling view's host side, apart from VS Code so it can be tested with real files: it
 * validates the webview's messages, writes labels to the preference store, and tells the view what
 * to show. In Restricted Mode it shows the queue and writes nothing.
 *
 * A label is acknowledged only once appendPreference has returned, that is once it is on disk.
 * Nothing about progress is kept in memory that the files do not also hold: after a reload the
 * next pair is the first one of the queue without a label.
 */
import * as fs from 'fs';
import {
  Choice,
  LabelingMode,
  LabelRequest,
  RankRequest,
  QueueState,
  ShownPair,
  parseToHost,
  ToWebview,
  ViewCommand,
  ViewLayout,
  ViewState,
} from '../../protocol/labeling';
import { ComparisonPair, labelPair, readQueue, unlabeledPairs } from '../../data/queue';
import {
  AlreadyLabeledError,
  appendPreference,
  appendPreferences,
  readPreferences,
  relabelPreference,
  undoPreferences,
} from '../../data/preferences';
import { Label, PreferenceRecord } from '../../data/preference-record';
import { formatDataError } from '../../data/jsonl';
import { ExperimentFile, Queue, queuePathProblems, queuesOf, readGuidelines } from './queues';
import { QualityChecks } from './quality';
import { QueueBrowser, shownChoice } from './browse';
import { decodeEntry, encodeEntry } from './history';
import { Rankings } from './ranking';
import { uncertaintyOrder } from '../../data/margins';
import { LabelOrder, QueueScoring, modelView, reviewOf } from './model-view';
import type { ScoringModel } from './scoring-model';

/** What the session needs from its surroundings (VS Code, or a test). */
export interface SessionHost {
  post(message: ToWebview): void;
  warn(message: string): void;
  /** Runs a command the view may start; the generate commands get the selected queue's experiment file. */
  runCommand(command: ViewCommand, experimentFile?: string): void;
  /** The workspace's experiment files (*.rlhf.json), each with its workspace folder. */
  findExperiments(): Promise<ExperimentFile[]>;
  /** Whether the workspace is trusted; in Restricted Mode no label is written. */
  isTrusted(): boolean;
  /** Where the picked queue is remembered between reloads. */
  selection: { get(): string | undefined; set(key: string): void };
  /** Where this window's labels (pair ids per preferences file) are remembered between reloads, for undo. */
  history: { get(): Record<string, string[]> | undefined; set(history: Record<string, string[]>): void };
  /** How a queue file is named in the picker (e.g. relative to the workspace). */
  describe?(file: string): string;
  /** In [0, 1): decides which response is shown on the left. */
  random?(): number;
  /** Who labels (the `rlhf.annotator` setting), stored with each label; nothing when unset. */
  annotator?(): string | undefined;
  /** The share of labels followed by a quality check (the `rlhf.labeling.checkRate` setting); none when unset. */
  checkRate?(): number;
  /** Milliseconds since some fixed time, for the time per label. */
  now?(): number;
  /** Pairwise or ranking, remembered for the workspace (default: the `rlhf.labeling.mode` setting). */
  mode?: { get(): LabelingMode | undefined; set(mode: LabelingMode): void };
  /** The view's size, and whether what it shows fits without scrolling. */
  layout?(layout: ViewLayout): void;
  /** The model that scores an experiment's queue (of its newest reward-model or DPO run), if it has one. */
  scoringModel?(experimentFile: string): ScoringModel | undefined;
  /** Scores a queue's unscored pairs into the model's margins cache (in a training process). */
  scoreQueue?(model: ScoringModel, queueFile: string): Promise<void>;
  /** The order of the unlabeled pairs (the `rlhf.labeling.order` setting); the queue's when absent. */
  order?(): LabelOrder;
}

/** The stored label for a choice about the responses as shown. */
export function storedLabel(choice: Choice, swapped: boolean): Label {
  if (choice === 'left') return swapped ? 'b' : 'a';
  if (choice === 'right') return swapped ? 'a' : 'b';
  return choice;
}

/** How many of its latest labels per preferences file a window can undo. */
const UNDO_DEPTH = 200;

const RESTRICTED = 'Labels are not saved in Restricted Mode: trust the workspace to label.';

/** Where a pair is among the pairs of its prompt, in queue order. */
function positionOf(pair: ComparisonPair, pairs: ComparisonPair[]): { index: number; count: number } {
  const prompt = JSON.stringify(pair.prompt);
  const same = pairs.filter((p) => JSON.stringify(p.prompt) === prompt);
  return { index: same.indexOf(pair) + 1, count: same.length };
}

export class LabelingSession {
  private queues: Queue[] | undefined;
  /** Why experiment files were left out of `queues`, from the latest scan. */
  private experimentProblems: string[] = [];
  /** Per pair, whether its response B is shown on the left; drawn once, kept while the session lives. */
  private readonly swapped = new Map<string, boolean>();
  /** Pair ids this window labeled, per preferences file, newest last: what undo takes back, newest first. */
  private readonly labeled: Map<string, string[]>;
  /** Messages are handled one at a time, in arrival order (an undo after a label undoes that label). */
  private pending: Promise<void> = Promise.resolve();
  private lastPosted = '';
  private readonly scoring = new QueueScoring({
    scoreQueue: (model, queueFile) => this.host.scoreQueue!(model, queueFile),
    warn: (message) => this.host.warn(`Labeling view: ${message}`),
    changed: () => void this.refresh(),
  });
  private readonly checks: QualityChecks;
  private readonly browser = new QueueBrowser();
  private readonly rankings = new Rankings(() => (this.host.random ?? Math.random)());
  /** When each pair (or check, by its history entry) was first shown, for the time per label. */
  private readonly shownAt = new Map<string, number>();

  constructor(private readonly host: SessionHost) {
    this.labeled = new Map(Object.entries(host.history.get() ?? {}));
    this.checks = new QualityChecks({
      annotator: () => this.annotator() ?? '',
      checkRate: () => host.checkRate?.() ?? 0,
      random: () => (host.random ?? Math.random)(),
    });
  }

  /** Handles one message from the webview; anything that is not in the protocol is logged and dropped. */
  handle(raw: unknown): Promise<void> {
    const parsed = parseToHost(raw);
    if (!parsed.ok) {
      this.host.warn(`Labeling view: rejected a message that is not in the protocol (${parsed.error})`);
      return this.pending;
    }
    const message = parsed.value;
    this.pending = this.pending
      .then(async () => {
        if (!this.queues) await this.scan();
        switch (message.type) {
          case 'ready':
            return this.refresh({ rescan: true, force: true });
          case 'label':
            return this.label(message);
          case 'undo':
            return this.undo(message.id);
          case 'selectQueue':
            this.host.selection.set(message.queue);
            this.browser.reset();
            return this.refresh();
          case 'find':
            this.browser.find(message.text, message.status);
            return this.refresh();
          case 'rank':
            return this.rank(message);
          case 'setMode':
            this.host.mode?.set(message.mode);
            return this.refresh();
          case 'openPair':
            this.browser.open(message.pairId);
            return this.refresh();
          case 'runCommand':
            return this.host.runCommand(
              message.command,
              message.command.startsWith('rlhf.generate') ? this.selectedQueue()?.key : undefined,
            );
          case 'layout':
            return this.host.layout?.({ width: message.width, height: message.height, fits: message.fits });
        }
      })
      .catch((err) => this.host.warn(`Labeling view: ${(err as Error).message}`));
    return this.pending;
  }

  /**
   * Sends the state if it changed (files written by another window, a new experiment file). With
   * `rescan` the experiment files are read again; with `force` the state is sent even if unchanged.
   */
  async refresh(options: { rescan?: boolean; force?: boolean } = {}): Promise<void> {
    if (options.rescan || !this.queues) await this.scan();
    const message: ToWebview = { type: 'state', state: this.state() };
    const text = JSON.stringify(message);
    if (!options.force && text === this.lastPosted) return;
    this.lastPosted = text;
    this.host.post(message);
  }

  private async scan(): Promise<void> {
    const problems: string[] = [];
    this.queues = queuesOf(await this.host.findExperiments(), (problem) => {
      problems.push(problem);
      this.host.warn(`Labeling view: ${problem}`);
    });
    this.experimentProblems = problems;
  }

  private selectedQueue(): Queue | undefined {
    const queues = this.queues ?? [];
    return queues.find((q) => q.key === this.host.selection.get()) ?? queues[0];
  }

  private state(): ViewState {
    const queue = this.selectedQueue();
    if (!queue) return { kind: 'noQueue', problems: this.experimentProblems };
    const outside = queuePathProblems(queue);
    const readable = outside.length === 0 && fs.existsSync(queue.queueFile);
    const { pairs, unlabeled, records, errors } = readable
      ? unlabeledPairs(queue.queueFile, queue.preferencesFile)
      : { pairs: [], unlabeled: [], records: [], errors: [] };
    const restricted = !this.host.isTrusted();
    // Scoring runs the model in a training process: not in Restricted Mode.
    const model = readable && !restricted && this.host.scoreQueue ? this.host.scoringModel?.(queue.key) : undefined;
    const scored = model && this.scoring.margins(model, queue.queueFile, pairs);
    const uncertainFirst = scored && this.host.order?.() === 'uncertainty';
    const next = (uncertainFirst ? uncertaintyOrder(unlabeled, scored.margins) : unlabeled).at(0);
    const state: QueueState = {
      kind: 'queue',
      queues: (this.queues ?? []).map((q) => ({
        key: q.key,
        label: q.name,
        detail: this.host.describe?.(q.queueFile) ?? q.queueFile,
      })),
      selected: queue.key,
      done: pairs.length - unlabeled.length,
      total: pairs.length,
      canUndo: !restricted && outside.length === 0 && this.undoTarget(queue) !== undefined,
      restricted,
      problems: [
        ...this.experimentProblems,
        ...outside,
        ...[...errors, ...(scored?.errors ?? [])].map((e) => formatDataError(e)),
      ],
    };
    const sides = (pairId: string) => this.isSwapped(pairId);
    const opened = this.browser.openedPair(pairs);
    const mode = this.host.mode?.get() ?? 'pairwise';
    const group = mode === 'ranking' ? this.rankings.group(pairs, unlabeled) : undefined;
    const check = readable && !restricted && mode === 'pairwise' ? this.dueCheck(queue, pairs) : undefined;
    if (mode === 'ranking') state.mode = mode;
    if (opened) {
      state.pair = this.shownOpened(opened, pairs, records);
      if (records.some((r) => r.id === opened.pair_id))
        state.review = reviewOf(opened.pair_id, records, scored?.margins, sides);
    } else if (group) state.ranking = this.rankings.shown(group);
    else if (check) state.pair = check;
    else if (next) state.pair = { ...this.shown(next), position: positionOf(next, pairs) };
    if (state.ranking) this.markShown(encodeEntry({ kind: 'rank', pairIds: state.ranking.pairIds }));
    const found = this.browser.found(pairs, records);
    if (found) state.found = found;
    if (state.pair)
      this.markShown(encodeEntry({ kind: state.pair.check ? 'check' : 'label', pairId: state.pair.pairId }));
    if (readable) state.statistics = this.checks.statistics(queue.preferencesFile);
    if (model && scored) {
      const last = this.labeledIn(queue).at(-1);
      const latest = last !== undefined && decodeEntry(last).kind === 'label' ? last : undefined;
      state.model = modelView({ model, ...scored, pairs, records, latest, sides });
    }
    const guidelines = readGuidelines(queue);
    if (guidelines !== undefined) state.guidelines = guidelines;
    return state;
  }

  /** The check due in this queue, shown with the sides swapped from when the pair was labeled. */
  private dueCheck(queue: Queue, pairs: ComparisonPair[]): ShownPair | undefined {
    const pairId = this.checks.dueIn(queue.preferencesFile);
    const pair = pairId === undefined ? undefined : pairs.find((p) => p.pair_id === pairId);
    const record = pair && this.checks.labelOf(queue.preferencesFile, pair.pair_id);
    if (!pair || !record) return undefined;
    const wasSwapped = record.shown_left === undefined ? this.isSwapped(pair.pair_id) : record.shown_left === 'b';
    return { ...this.shown(pair, !wasSwapped), position: positionOf(pair, pairs), check: true };
  }

  /** A pair opened from the search, with the choice that stands for it, if any. */
  private shownOpened(pair: ComparisonPair, pairs: ComparisonPair[], records: PreferenceRecord[]): ShownPair {
    const label = records.filter((r) => r.id === pair.pair_id && r.label !== undefined).at(-1)?.label;
    const shown = { ...this.shown(pair), position: positionOf(pair, pairs) };
    return label === undefined ? shown : { ...shown, labeled: shownChoice(label, this.isSwapped(pair.pair_id)) };
  }

  private markShown(entry: string): void {
    if (!this.shownAt.has(entry)) this.shownAt.set(entry, (this.host.now ?? Date.now)());
  }

  /** Seconds since the pair (or check) was first shown, to a tenth. */
  private secondsOn(entry: string): number | undefined {
    const shown = this.shownAt.get(entry);
    this.shownAt.delete(entry);
    return shown === undefined ? undefined : Math.round(((this.host.now ?? Date.now)() - shown) / 100) / 10;
  }

  private annotator(): string | undefined {
    return this.host.annotator?.()?.trim() || undefined;
  }

  private shown(pair: ComparisonPair, swapped = this.isSwapped(pair.pair_id)): ShownPair {
    const [left, right] = swapped ? [pair.response_b, pair.response_a] : [pair.response_a, pair.response_b];
    return { pairId: pair.pair_id, prompt: pair.prompt, left, right, ...(pair.source && { source: pair.source }) };
  }

  private isSwapped(pairId: string): boolean {
    if (!this.swapped.has(pairId)) this.swapped.set(pairId, (this.host.random ?? Math.random)() < 0.5);
    return this.swapped.get(pairId)!;
  }

  private async label(request: LabelRequest): Promise<void> {
    const queue = this.selectedQueue();
    const refusal = this.writeRefusal(queue);
    if (refusal) return this.answer(request.id, refusal);
    const pair =
      queue && fs.existsSync(queue.queueFile)
        ? readQueue(queue.queueFile).pairs.find((p) => p.pair_id === request.pairId)
        : undefined;
    if (!queue || !pair) return this.answer(request.id, 'This pair is not in the selected queue.');
    const checking = this.checks.dueIn(queue.preferencesFile) === pair.pair_id && !this.browser.isOpened(pair.pair_id);
    if (checking) return this.check(queue, pair, request);
    const rationale = request.rationale?.trim();
    const annotator = this.annotator();
    const swapped = this.isSwapped(pair.pair_id);
    const seconds = this.secondsOn(pair.pair_id);
    const record = labelPair(pair, storedLabel(request.choice, swapped), {
      ...(rationale ? { rationale } : {}),
      ...(annotator ? { annotator } : {}),
      shown_left: swapped ? 'b' : 'a',
      ...(seconds !== undefined && { duration_seconds: seconds }),
    });
    const replace = this.browser.isOpened(pair.pair_id) && this.liveIds(queue).has(pair.pair_id);
    try {
      if (replace) await relabelPreference(queue.preferencesFile, record);
      else await appendPreference(queue.preferencesFile, record, { once: true });
    } catch (err) {
      // Labeled meanwhile, e.g. in another window on the same workspace: keep that label.
      if (err instanceof AlreadyLabeledError)
        return this.answer(request.id, 'This pair was already labeled (in another window?); showing the next one.');
      return this.answer(request.id, `The label was not saved: ${(err as Error).message}`);
    }
    this.remember(queue, [...this.labeledIn(queue), pair.pair_id]);
    if (this.browser.isOpened(pair.pair_id)) this.browser.open(undefined);
    else this.checks.afterLabel(queue.preferencesFile, pair.pair_id);
    return this.answer(request.id);
  }

  /** Stores a ranking of a prompt's candidates as the pairwise labels it implies, in one append. */
  private async rank(request: RankRequest): Promise<void> {
    const queue = this.selectedQueue();
    const refusal = this.writeRefusal(queue);
    if (refusal) return this.answer(request.id, refusal);
    if (!queue || !fs.existsSync(queue.queueFile)) return this.answer(request.id, 'There is no queue to rank in.');
    const { pairs, unlabeled } = unlabeledPairs(queue.queueFile, queue.preferencesFile);
    const entry = encodeEntry({ kind: 'rank', pairIds: request.pairIds });
    try {
      const records = this.rankings.records(this.rankings.group(pairs, unlabeled), request, {
        annotator: this.annotator(),
        seconds: this.secondsOn(entry),
      });
      await appendPreferences(queue.preferencesFile, records, { once: true });
    } catch (err) {
      return this.answer(request.id, `The ranking was not saved: ${(err as Error).message}`);
    }
    this.remember(queue, [...this.labeledIn(queue), entry]);
    return this.answer(request.id);
  }

  /** Stores the answer to a quality check in the check store; the pair's label stays as it is. */
  private async check(queue: Queue, pair: ComparisonPair, request: LabelRequest): Promise<void> {
    const record = this.checks.labelOf(queue.preferencesFile, pair.pair_id);
    if (!record) return this.answer(request.id, 'This pair is no longer labeled; showing the next one.');
    const swapped = record.shown_left === undefined ? !this.isSwapped(pair.pair_id) : record.shown_left === 'a';
    const entry = encodeEntry({ kind: 'check', pairId: pair.pair_id });
    const seconds = this.secondsOn(entry);
    try {
      await this.checks.record(queue.preferencesFile, pair.pair_id, {
        label: storedLabel(request.choice, swapped),
        shownLeft: swapped ? 'b' : 'a',
        ...(seconds !== undefined && { seconds }),
      });
    } catch (err) {
      return this.answer(request.id, `The check was not saved: ${(err as Error).message}`);
    }
    this.remember(queue, [...this.labeledIn(queue), entry]);
    return this.answer(request.id);
  }

  private async undo(id: number): Promise<void> {
    const queue = this.selectedQueue();
    const refusal = this.writeRefusal(queue);
    if (refusal) return this.answer(id, refusal);
    const target = queue && this.undoTarget(queue);
    if (!queue || !target) return this.answer(id, 'There is no label to undo.');
    const entry = decodeEntry(target);
    try {
      if (entry.kind === 'check') await this.checks.undo(queue.preferencesFile, entry.pairId);
      else {
        await undoPreferences(queue.preferencesFile, entry.kind === 'rank' ? entry.pairIds : [entry.pairId]);
        this.checks.forget(queue.preferencesFile);
      }
    } catch (err) {
      return this.answer(id, `The undo was not saved: ${(err as Error).message}`);
    }
    this.remember(queue, this.labeledIn(queue).slice(0, -1));
    return this.answer(id);
  }

  /** Why nothing may be written now: Restricted Mode, or queue files that have come to lead outside the workspace. */
  private writeRefusal(queue: Queue | undefined): string | undefined {
    if (!this.host.isTrusted()) return RESTRICTED;
    const [outside] = queue ? queuePathProblems(queue) : [];
    return outside && `Not saved: ${outside}`;
  }

  /**
   * The pair whose label an undo takes back: this window's latest label that still stands (also
   * after a reload; never another window's or another person's label).
   */
  private undoTarget(queue: Queue): string | undefined {
    const live = this.liveIds(queue);
    const mine = this.labeledIn(queue);
    let standing = mine.length;
    const stands = (text: string) => {
      const entry = decodeEntry(text);
      if (entry.kind === 'check') return this.checks.stands(queue.preferencesFile, entry.pairId);
      return entry.kind === 'rank' ? entry.pairIds.every((id) => live.has(id)) : live.has(entry.pairId);
    };
    while (standing > 0 && !stands(mine[standing - 1])) standing--;
    if (standing < mine.length) this.remember(queue, mine.slice(0, standing));
    return standing > 0 ? mine[standing - 1] : undefined;
  }

  /** Keeps the window's latest labels of a preferences file, for undo after a reload. */
  private remember(queue: Queue, ids: string[]): void {
    this.labeled.set(queue.preferencesFile, ids.slice(-UNDO_DEPTH));
    this.host.history.set(Object.fromEntries(this.labeled));
  }

  private liveIds(queue: Queue): Set<string> {
    if (!fs.existsSync(queue.preferencesFile)) return new Set();
    return new Set(readPreferences(queue.preferencesFile).records.flatMap((r) => (r.id === undefined ? [] : [r.id])));
  }

  private labeledIn(queue: Queue): string[] {
    return this.labeled.get(queue.preferencesFile) ?? [];
  }

  /** Answers a request, then sends what the view shows now. */
  private async answer(id: number, error?: string): Promise<void> {
    if (error !== undefined) this.host.warn(`Labeling view: ${error}`);
    this.host.post(error === undefined ? { type: 'result', id, ok: true } : { type: 'result', id, ok: false, error });
    await this.refresh({ force: true });
  }
}

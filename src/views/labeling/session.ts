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
  relabelPreference,
  standingIds,
} from '../../data/preferences';
import { PreferenceRecord } from '../../data/preference-record';
import { formatDataError } from '../../data/jsonl';
import { ExperimentFile, Queue, queuePathProblems, queuesOf, readGuidelines } from './queues';
import { QualityChecks } from './quality';
import { QueueBrowser, shownChoice } from './browse';
import { encodeEntry, HistoryStore, UndoHistory } from './history';
import { PairSides, positionOf, storedLabel } from './shown';
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
  /** Where this window's labels (per preferences file) are remembered between reloads, for undo. */
  history: HistoryStore;
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

const RESTRICTED = 'Labels are not saved in Restricted Mode: trust the workspace to label.';

export class LabelingSession {
  private queues: Queue[] | undefined;
  /** Why experiment files were left out of `queues`, from the latest scan. */
  private experimentProblems: string[] = [];
  /** What this window labeled, per preferences file: what undo takes back, newest first. */
  private readonly history: UndoHistory;
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
  private readonly sides = new PairSides(
    () => (this.host.random ?? Math.random)(),
    () => (this.host.now ?? Date.now)(),
  );

  constructor(private readonly host: SessionHost) {
    this.checks = new QualityChecks({
      annotator: () => this.annotator() ?? '',
      checkRate: () => host.checkRate?.() ?? 0,
      random: () => (host.random ?? Math.random)(),
    });
    this.history = new UndoHistory(host.history, this.checks);
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
      canUndo: !restricted && outside.length === 0 && this.history.target(queue.preferencesFile) !== undefined,
      restricted,
      problems: [
        ...this.experimentProblems,
        ...outside,
        ...[...errors, ...(scored?.errors ?? [])].map((e) => formatDataError(e)),
      ],
    };
    const sides = (pairId: string) => this.sides.isSwapped(pairId);
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
    else if (next) state.pair = { ...this.sides.shown(next), position: positionOf(next, pairs) };
    if (state.ranking) this.sides.markShown(encodeEntry({ kind: 'rank', pairIds: state.ranking.pairIds }));
    const found = this.browser.found(pairs, records);
    if (found) state.found = found;
    if (state.pair)
      this.sides.markShown(encodeEntry({ kind: state.pair.check ? 'check' : 'label', pairId: state.pair.pairId }));
    if (readable) state.statistics = this.checks.statistics(queue.preferencesFile);
    if (model && scored) {
      const last = this.history.latest(queue.preferencesFile);
      const latest = last?.kind === 'label' || last?.kind === 'relabel' ? last.pairId : undefined;
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
    const wasSwapped = record.shown_left === undefined ? this.sides.isSwapped(pair.pair_id) : record.shown_left === 'b';
    return { ...this.sides.shown(pair, !wasSwapped), position: positionOf(pair, pairs), check: true };
  }

  /** A pair opened from the search, with the choice that stands for it, if any. */
  private shownOpened(pair: ComparisonPair, pairs: ComparisonPair[], records: PreferenceRecord[]): ShownPair {
    const label = records.filter((r) => r.id === pair.pair_id && r.label !== undefined).at(-1)?.label;
    const shown = { ...this.sides.shown(pair), position: positionOf(pair, pairs) };
    return label === undefined ? shown : { ...shown, labeled: shownChoice(label, this.sides.isSwapped(pair.pair_id)) };
  }

  private annotator(): string | undefined {
    return this.host.annotator?.()?.trim() || undefined;
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
    const swapped = this.sides.isSwapped(pair.pair_id);
    const seconds = this.sides.secondsOn(pair.pair_id);
    const record = labelPair(pair, storedLabel(request.choice, swapped), {
      ...(rationale ? { rationale } : {}),
      ...(annotator ? { annotator } : {}),
      shown_left: swapped ? 'b' : 'a',
      ...(seconds !== undefined && { duration_seconds: seconds }),
    });
    const replace = this.browser.isOpened(pair.pair_id) && standingIds(queue.preferencesFile).has(pair.pair_id);
    try {
      if (replace) {
        const replacedLine = await relabelPreference(queue.preferencesFile, record);
        this.history.add(queue.preferencesFile, { kind: 'relabel', pairId: pair.pair_id, replacedLine });
      } else {
        await appendPreference(queue.preferencesFile, record, { once: true });
        this.history.add(queue.preferencesFile, { kind: 'label', pairId: pair.pair_id });
      }
    } catch (err) {
      // Labeled meanwhile, e.g. in another window on the same workspace: keep that label.
      if (err instanceof AlreadyLabeledError)
        return this.answer(request.id, 'This pair was already labeled (in another window?); showing the next one.');
      return this.answer(request.id, `The label was not saved: ${(err as Error).message}`);
    }
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
        seconds: this.sides.secondsOn(entry),
      });
      await appendPreferences(queue.preferencesFile, records, { once: true });
    } catch (err) {
      return this.answer(request.id, `The ranking was not saved: ${(err as Error).message}`);
    }
    this.history.add(queue.preferencesFile, { kind: 'rank', pairIds: request.pairIds });
    return this.answer(request.id);
  }

  /** Stores the answer to a quality check in the check store; the pair's label stays as it is. */
  private async check(queue: Queue, pair: ComparisonPair, request: LabelRequest): Promise<void> {
    const record = this.checks.labelOf(queue.preferencesFile, pair.pair_id);
    if (!record) return this.answer(request.id, 'This pair is no longer labeled; showing the next one.');
    const swapped = record.shown_left === undefined ? !this.sides.isSwapped(pair.pair_id) : record.shown_left === 'a';
    const seconds = this.sides.secondsOn(encodeEntry({ kind: 'check', pairId: pair.pair_id }));
    try {
      await this.checks.record(queue.preferencesFile, pair.pair_id, {
        label: storedLabel(request.choice, swapped),
        shownLeft: swapped ? 'b' : 'a',
        ...(seconds !== undefined && { seconds }),
      });
    } catch (err) {
      return this.answer(request.id, `The check was not saved: ${(err as Error).message}`);
    }
    this.history.add(queue.preferencesFile, { kind: 'check', pairId: pair.pair_id });
    return this.answer(request.id);
  }

  private async undo(id: number): Promise<void> {
    const queue = this.selectedQueue();
    const refusal = this.writeRefusal(queue);
    if (refusal) return this.answer(id, refusal);
    try {
      if (!queue || !(await this.history.undo(queue.preferencesFile)))
        return this.answer(id, 'There is no label to undo.');
    } catch (err) {
      return this.answer(id, `The undo was not saved: ${(err as Error).message}`);
    }
    return this.answer(id);
  }

  /** Why nothing may be written now: Restricted Mode, or queue files that have come to lead outside the workspace. */
  private writeRefusal(queue: Queue | undefined): string | undefined {
    if (!this.host.isTrusted()) return RESTRICTED;
    const [outside] = queue ? queuePathProblems(queue) : [];
    return outside && `Not saved: ${outside}`;
  }

  /** Answers a request, then sends what the view shows now. */
  private async answer(id: number, error?: string): Promise<void> {
    if (error !== undefined) this.host.warn(`Labeling view: ${error}`);
    this.host.post(error === undefined ? { type: 'result', id, ok: true } : { type: 'result', id, ok: false, error });
    await this.refresh({ force: true });
  }
}

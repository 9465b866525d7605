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
  LabelRequest,
  QueueState,
  ShownPair,
  parseToHost,
  ToWebview,
  ViewCommand,
  ViewLayout,
  ViewState,
} from '../../protocol/labeling';
import { ComparisonPair, labelPair, readQueue, unlabeledPairs } from '../../data/queue';
import { AlreadyLabeledError, appendPreference, readPreferences, undoPreference } from '../../data/preferences';
import { relabelPreference } from '../../data/relabel';
import { uncertaintyOrder } from '../../data/margins';
import { Label, PreferenceRecord } from '../../data/preference-record';
import { formatDataError } from '../../data/jsonl';
import { ExperimentFile, Queue, queuePathProblems, queuesOf, readGuidelines } from './queues';
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
  /** A labeled pair shown again to re-check; a label for it replaces the standing one. */
  private review: string | undefined;
  private readonly scoring = new QueueScoring({
    scoreQueue: (model, queueFile) => this.host.scoreQueue!(model, queueFile),
    warn: (message) => this.host.warn(`Labeling view: ${message}`),
    changed: () => void this.refresh(),
  });

  constructor(private readonly host: SessionHost) {
    this.labeled = new Map(Object.entries(host.history.get() ?? {}));
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
            return this.refresh();
          case 'runCommand':
            return this.host.runCommand(
              message.command,
              message.command.startsWith('rlhf.generate') ? this.selectedQueue()?.key : undefined,
            );
          case 'review':
            this.review = message.pairId;
            return this.refresh();
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
    const reviewed = records.some((r) => r.id === this.review) && pairs.find((p) => p.pair_id === this.review);
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
    if (reviewed) {
      state.pair = { ...this.shown(reviewed), position: positionOf(reviewed, pairs) };
      state.review = reviewOf(reviewed.pair_id, records, scored?.margins, sides);
    } else if (next) state.pair = { ...this.shown(next), position: positionOf(next, pairs) };
    if (model && scored) {
      const latest = this.labeledIn(queue).at(-1);
      state.model = modelView({ model, ...scored, pairs, records, latest, sides });
    }
    const guidelines = readGuidelines(queue);
    if (guidelines !== undefined) state.guidelines = guidelines;
    return state;
  }

  private shown(pair: ComparisonPair): ShownPair {
    const swapped = this.isSwapped(pair.pair_id);
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
    const rationale = request.rationale?.trim();
    const annotator = this.host.annotator?.()?.trim();
    const record = labelPair(pair, storedLabel(request.choice, this.isSwapped(pair.pair_id)), {
      ...(rationale ? { rationale } : {}),
      ...(annotator ? { annotator } : {}),
    });
    if (request.pairId === this.review) return this.relabel(request.id, queue, record);
    try {
      await appendPreference(queue.preferencesFile, record, { once: true });
    } catch (err) {
      // Labeled meanwhile, e.g. in another window on the same workspace: keep that label.
      if (err instanceof AlreadyLabeledError)
        return this.answer(request.id, 'This pair was already labeled (in another window?); showing the next one.');
      return this.answer(request.id, `The label was not saved: ${(err as Error).message}`);
    }
    this.remember(queue, [...this.labeledIn(queue), pair.pair_id]);
    return this.answer(request.id);
  }

  /** Replaces the standing label of the pair under review, then goes back to the queue. */
  private async relabel(id: number, queue: Queue, record: PreferenceRecord): Promise<void> {
    try {
      await relabelPreference(queue.preferencesFile, record);
    } catch (err) {
      return this.answer(id, `The new label was not saved: ${(err as Error).message}`);
    }
    this.review = undefined;
    return this.answer(id);
  }

  private async undo(id: number): Promise<void> {
    const queue = this.selectedQueue();
    const refusal = this.writeRefusal(queue);
    if (refusal) return this.answer(id, refusal);
    const target = queue && this.undoTarget(queue);
    if (!queue || !target) return this.answer(id, 'There is no label to undo.');
    try {
      await undoPreference(queue.preferencesFile, target);
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
    while (standing > 0 && !live.has(mine[standing - 1])) standing--;
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

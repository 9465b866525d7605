/**
 * What the labels teach, on the host's side of the labeling view: the scoring model's margins next
 * to the person's labels, the labels it confidently contradicts, and the unlabeled pairs in the
 * order it is least sure of. Margins come from the cache the training process fills
 * (src/data/margins.ts); new pairs are scored in the background, one scoring per model and queue
 * at a time. A margin is only ever sent for a pair that has a label.
 */
import { ModelView, QueueState, ScoredChoice } from '../../protocol/labeling';
import { ScoredLabel, disagreements, readMargins, scoredLabels, unscoredPairs } from '../../data/margins';
import { ComparisonPair } from '../../data/queue';
import { PreferenceRecord } from '../../data/preference-record';
import { ScoringModel } from './scoring-model';

/** How many disagreements the view lists. */
const LISTED = 20;
/** How much of a prompt a list entry shows. */
const EXCERPT = 80;

export interface ScoringHost {
  /** Scores the queue's unscored pairs into the model's cache (in a training process). */
  scoreQueue(model: ScoringModel, queueFile: string): Promise<void>;
  warn(message: string): void;
  /** The cache has changed: show it. */
  changed(): void;
}

/** Whether a pair's response B is shown on the left. */
export type Sides = (pairId: string) => boolean;

/** Starts background scoring of pairs not tried yet, and reads the cache. */
export class QueueScoring {
  private readonly running = new Set<string>();
  /** Per model and queue, the pairs a scoring was started for: tried once (a pair too long stays unscored). */
  private readonly tried = new Map<string, Set<string>>();

  constructor(private readonly host: ScoringHost) {}

  /** The model's margins on the queue; starts scoring the pairs it has not tried yet. */
  margins(model: ScoringModel, queueFile: string, pairs: ComparisonPair[]) {
    const { margins, errors } = readMargins(model.cache, model.model);
    const key = JSON.stringify([model.model, queueFile]);
    const tried = this.tried.get(key) ?? new Set<string>();
    this.tried.set(key, tried);
    const fresh = unscoredPairs(pairs, margins).filter((p) => !tried.has(p.pair_id));
    if (fresh.length > 0 && !this.running.has(key)) {
      for (const p of fresh) tried.add(p.pair_id);
      this.running.add(key);
      void this.host
        .scoreQueue(model, queueFile)
        .catch((err) => this.host.warn(`Scoring the queue with ${model.name} failed: ${(err as Error).message}`))
        .finally(() => {
          this.running.delete(key);
          this.host.changed();
        });
    }
    return { margins, errors, scoring: this.running.has(key) };
  }
}

function excerpt(prompt: ComparisonPair['prompt']): string {
  const text = typeof prompt === 'string' ? prompt : (prompt.at(-1)?.content ?? '');
  const line = text.trim().replace(/\s+/g, ' ');
  return line.length > EXCERPT ? `${line.slice(0, EXCERPT - 1)}…` : line;
}

/** The side a stored label's winner is shown on. */
function shownChoice(label: 'a' | 'b', swapped: boolean): 'left' | 'right' {
  return (label === 'a') !== swapped ? 'left' : 'right';
}

/** A stored label and margin as the view shows the pair: left and right in place of A and B. */
function asShown(label: ScoredLabel, swapped: boolean): Omit<ScoredChoice, 'prompt'> {
  return {
    pairId: label.pairId,
    choice: shownChoice(label.label, swapped),
    margin: swapped ? -label.margin : label.margin,
  };
}

export interface ModelViewInput {
  model: ScoringModel;
  margins: ReadonlyMap<string, number>;
  scoring: boolean;
  /** The queue's pairs, and the standing labels of the store. */
  pairs: readonly ComparisonPair[];
  records: readonly PreferenceRecord[];
  /** This window's latest label. */
  latest?: string;
  sides: Sides;
}

export function modelView(input: ModelViewInput): ModelView {
  const inQueue = new Map(input.pairs.map((p) => [p.pair_id, p]));
  const labels = scoredLabels(input.records, input.margins).filter((l) => inQueue.has(l.pairId));
  const shown = (label: ScoredLabel): ScoredChoice => ({
    ...asShown(label, input.sides(label.pairId)),
    prompt: excerpt(inQueue.get(label.pairId)!.prompt),
  });
  const latest = labels.find((l) => l.pairId === input.latest);
  const contradicted = disagreements(labels);
  return {
    name: input.model.name,
    ...(input.model.accuracy !== undefined && { accuracy: input.model.accuracy }),
    scoring: input.scoring,
    ...(latest && { latest: shown(latest) }),
    disagreements: contradicted.slice(0, LISTED).map(shown),
    disagreementCount: contradicted.length,
  };
}

/** The order the unlabeled pairs come in: the queue's, or the scoring model's least certain first. */
export type LabelOrder = 'queue' | 'uncertainty';

/** A labeled pair shown again: its standing label, and the margin once scored, as shown. */
export function reviewOf(
  pairId: string,
  records: readonly PreferenceRecord[],
  margins: ReadonlyMap<string, number> | undefined,
  sides: Sides,
): NonNullable<QueueState['review']> {
  const record = records.filter((r) => r.id === pairId).at(-1);
  if (record?.label !== 'a' && record?.label !== 'b') return { pairId };
  const margin = margins?.get(pairId);
  const swapped = sides(pairId);
  if (margin === undefined) return { pairId, choice: shownChoice(record.label, swapped) };
  return asShown({ pairId, label: record.label, margin }, swapped);
}

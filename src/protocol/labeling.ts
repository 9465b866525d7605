/**
 * The messages between the labeling view and the extension host. Both sides validate what arrives
 * against these schemas and drop anything else.
 *
 * The webview sends requests (with an `id`) and notifications. Every request gets exactly one
 * `result` with the same id; the host sends `state` whenever what the view shows changes.
 *
 * The view never learns which stored response is on which side: the host shows each pair's
 * responses as `left` and `right` in an order of its choosing, and maps the person's choice back
 * to the stored label "a" or "b".
 */
import { z } from 'zod';
import { Parsed, parseWith } from './parse';

/** What the person decided about the two responses as shown. */
export const choiceSchema = z.enum(['left', 'right', 'tie', 'both_bad', 'skip']);
export type Choice = z.infer<typeof choiceSchema>;

/** Commands the view may start; nothing else runs from a webview message. */
export const viewCommandSchema = z.enum([
  'rlhf.generateComparisons',
  'rlhf.generateComparisonsFromRun',
  'rlhf.newExperiment',
  'workbench.trust.manage',
]);
export type ViewCommand = z.infer<typeof viewCommandSchema>;

const requestId = z.number().int().nonnegative();

/** Pairwise: one pair at a time. Ranking: all candidates of a prompt at once, stored as the pairs they imply. */
export const labelingModeSchema = z.enum(['pairwise', 'ranking']);
export type LabelingMode = z.infer<typeof labelingModeSchema>;

/** A pair's status in the queue: unlabeled, or its stored label ("a": the queue's response_a won). */
export const pairStatusSchema = z.enum(['unlabeled', 'a', 'b', 'tie', 'both_bad', 'skip']);
export type PairStatus = z.infer<typeof pairStatusSchema>;
export const statusFilterSchema = z.enum(['all', ...pairStatusSchema.options]);
export type StatusFilter = z.infer<typeof statusFilterSchema>;

// ---- Webview → host

export const toHostSchema = z.discriminatedUnion('type', [
  /** The page has loaded (again, after a reload or when the view is shown): send the state. */
  z.object({ type: z.literal('ready') }).strict(),
  z
    .object({
      type: z.literal('label'),
      id: requestId,
      pairId: z.string().min(1),
      choice: choiceSchema,
      rationale: z.string().max(10_000).optional(),
    })
    .strict(),
  /** Takes back the latest label of the selected queue. */
  z.object({ type: z.literal('undo'), id: requestId }).strict(),
  /** Picks a queue by its key (QueueInfo.key). */
  z.object({ type: z.literal('selectQueue'), queue: z.string().min(1) }).strict(),
  z.object({ type: z.literal('runCommand'), command: viewCommandSchema }).strict(),
  /**
   * Lists the selected queue's pairs holding `text` with this status (state.found); no text and
   * "all" list every pair.
   */
  z.object({ type: z.literal('find'), text: z.string().max(500), status: statusFilterSchema }).strict(),
  /**
   * Ranks the candidates of the prompt shown (state.ranking, whose pairIds it names): rank 1 is best,
   * equal ranks tie; "skip" skips the prompt's pairs. Answered like a label.
   */
  z
    .object({
      type: z.literal('rank'),
      id: requestId,
      pairIds: z.array(z.string().min(1)).min(1),
      ranks: z.union([
        z.array(z.object({ candidate: z.string().min(1), rank: z.number().int().positive() }).strict()).min(2),
        z.literal('skip'),
      ]),
    })
    .strict(),
  z.object({ type: z.literal('setMode'), mode: labelingModeSchema }).strict(),
  /** Shows this pair next (a labeled one to look at or label again); none: back to the queue's order. */
  z.object({ type: z.literal('openPair'), pairId: z.string().min(1).optional() }).strict(),
  /**
   * The view's size in CSS pixels, and whether everything it shows fits without scrolling the view
   * (sent when either changes), so Open Labeling can give a view that is too small more room.
   */
  z
    .object({
      type: z.literal('layout'),
      width: z.number().nonnegative(),
      height: z.number().nonnegative(),
      fits: z.boolean(),
    })
    .strict(),
]);
export type ToHost = z.infer<typeof toHostSchema>;
export type LabelRequest = Extract<ToHost, { type: 'label' }>;
export type RankRequest = Extract<ToHost, { type: 'rank' }>;
export type ViewLayout = Omit<Extract<ToHost, { type: 'layout' }>, 'type'>;

// ---- Host → webview

const chatMessageSchema = z.object({ role: z.string(), content: z.string() });

export const shownPairSchema = z.object({
  pairId: z.string().min(1),
  /** Text, or a conversation whose last turn the responses continue. */
  prompt: z.union([z.string(), z.array(chatMessageSchema)]),
  left: z.string(),
  right: z.string(),
  /** Where the pair is among the pairs of its prompt, in queue order ("pair 3 of 6"). */
  position: z.object({ index: z.number().int().positive(), count: z.number().int().positive() }).optional(),
  /** The run whose model sampled the pair ("demo DPO #2"), when it came from one. */
  source: z.string().optional(),
  /** A quality check: a pair labeled before, shown again with the sides swapped; the answer is kept apart. */
  check: z.literal(true).optional(),
  /** The choice that stands for a pair opened from the search, as shown; a new choice replaces it. */
  labeled: choiceSchema.optional(),
});
export type ShownPair = z.infer<typeof shownPairSchema>;

const count = z.number().int().nonnegative();

/** How consistent the labels of the selected queue are (src/data/agreement.ts). */
export const labelingStatisticsSchema = z.object({
  /** Who labels in this window; the figures below but `agreement` are this annotator's. */
  annotator: z.string(),
  labels: count,
  /** Quality checks of the annotator's own labels, and how many repeated the label. */
  selfAgreement: z.object({ checks: count, agreed: count }),
  /** Labels and checks with a winner, and how many of them chose the response shown on the left. */
  positionBias: z.object({ decided: count, left: count }),
  medianSeconds: z.number().nonnegative().optional(),
  /** Cohen's κ per two annotators on the pairs both judged; null where κ is undefined. */
  agreement: z.array(
    z.object({
      annotators: z.tuple([z.string(), z.string()]),
      pairs: count,
      agreement: z.number().min(0).max(1),
      kappa: z.number().nullable(),
    }),
  ),
});
export type LabelingStatistics = z.infer<typeof labelingStatisticsSchema>;

export const queueInfoSchema = z.object({
  /** Stable name of the queue: the experiment file's path. */
  key: z.string().min(1),
  /** For the picker: the experiment's name and where its queue file is. */
  label: z.string(),
  detail: z.string(),
});
export type QueueInfo = z.infer<typeof queueInfoSchema>;

/**
 * Experiment files that could not be used (invalid, or naming files outside the workspace folder)
 * as their errors, then bad lines in the queue and preferences files, as "file:line: message".
 */
const problems = z.array(z.string());

/**
 * A labeled pair beside the scoring model's margin, both as shown: `margin` is r(left) − r(right),
 * so a positive margin agrees with "left". Never sent for a pair that has no label.
 */
export const scoredChoiceSchema = z.object({
  pairId: z.string().min(1),
  /** The prompt's opening, to tell pairs apart in a list. */
  prompt: z.string(),
  choice: z.enum(['left', 'right']),
  margin: z.number(),
});
export type ScoredChoice = z.infer<typeof scoredChoiceSchema>;

/** What the labels teach: the newest reward model (or DPO policy) of the experiment, on the labeled pairs. */
export const modelViewSchema = z.object({
  /** The run whose model scores ("demo Reward Model #2"). */
  name: z.string(),
  /** Its accuracy on the held-out labels (the run's eval split), when the run recorded one. */
  accuracy: z.number().min(0).max(1).optional(),
  /** Pairs are being scored in the background. */
  scoring: z.boolean(),
  /** This window's latest label, once scored. */
  latest: scoredChoiceSchema.optional(),
  /** Labels the model confidently contradicts, most confident first. */
  disagreements: z.array(scoredChoiceSchema),
  /** Of how many, when the list is cut short. */
  disagreementCount: z.number().int().nonnegative(),
});
export type ModelView = z.infer<typeof modelViewSchema>;

export const viewStateSchema = z.discriminatedUnion('kind', [
  /** No experiment file in the workspace has a `comparisons` section that can be used. */
  z.object({ kind: z.literal('noQueue'), problems }),
  z.object({
    kind: z.literal('queue'),
    queues: z.array(queueInfoSchema),
    selected: z.string().min(1),
    done: z.number().int().nonnegative(),
    total: z.number().int().nonnegative(),
    /** The next unlabeled pair; absent when the queue is empty or all labeled. */
    pair: shownPairSchema.optional(),
    /** The queue's guidelines (comparisons.guidelines, else guidelines.md beside the queue) as Markdown, if any. */
    guidelines: z.string().optional(),
    canUndo: z.boolean(),
    statistics: labelingStatisticsSchema.optional(),
    /** Absent: pairwise. */
    mode: labelingModeSchema.optional(),
    /** In ranking mode, the prompt to rank (instead of `pair`), its candidates in the order to show. */
    ranking: z
      .object({
        pairIds: z.array(z.string().min(1)).min(1),
        prompt: z.union([z.string(), z.array(chatMessageSchema)]),
        candidates: z.array(z.object({ id: z.string().min(1), text: z.string() })).min(2),
      })
      .optional(),
    /** The pairs the latest `find` matched, the first ones of `count` in queue order. */
    found: z
      .object({
        count: count,
        pairs: z.array(z.object({ pairId: z.string().min(1), prompt: z.string(), status: pairStatusSchema })),
      })
      .optional(),
    /** Restricted Mode (an untrusted workspace): the queue shows read-only, and labels are not written. */
    restricted: z.boolean(),
    problems,
    /** Present once the experiment has a model that scores pairs. */
    model: modelViewSchema.optional(),
    /** `pair` is a labeled pair shown again to re-check: its standing label and the model's margin. */
    review: scoredChoiceSchema.omit({ prompt: true }).partial({ choice: true, margin: true }).optional(),
  }),
]);
export type ViewState = z.infer<typeof viewStateSchema>;
export type QueueState = Extract<ViewState, { kind: 'queue' }>;

/** The sections of the view that open and close; which are open is remembered. */
export const viewSectionSchema = z.enum(['guidelines', 'statistics', 'search']);
export type ViewSection = z.infer<typeof viewSectionSchema>;

export const toWebviewSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('state'), state: viewStateSchema }),
  /** Opens a section of the view (Show Labeling Statistics opens the statistics). */
  z.object({ type: z.literal('openSection'), section: viewSectionSchema }),
  /** The answer to a request: ok once the change is on disk. */
  z.object({ type: z.literal('result'), id: requestId, ok: z.boolean(), error: z.string().optional() }),
]);
export type ToWebview = z.infer<typeof toWebviewSchema>;

export const parseToHost = (message: unknown): Parsed<ToHost> => parseWith(toHostSchema, message);
export const parseToWebview = (message: unknown): Parsed<ToWebview> => parseWith(toWebviewSchema, message);

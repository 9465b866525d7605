/**
 * The boundary between the extension host and the charts webview. Both sides import this file and
 * validate every message on arrival: the webview's messages may come from a page that was tampered
 * with, and the host's from an older build after an update.
 *
 * Metrics travel as columns of points, one point per logged step. A `points` message replaces a
 * run's points from index `from` on, so the same message says "append" (from = length), "the
 * last step got more values" (from = length - 1) and "the run resumed from an earlier step"
 * (from < length - 1). Columns are Float64Arrays, NaN where a step has no value: postMessage
 * copies them as they are, where JSON would cost seconds for a long run on both sides.
 */
import { z } from 'zod';
import { Parsed, parseWith } from './parse';
import { EXPERIMENT_STAGES, sampleRowSchema } from './runner';

/** The registry's run statuses (src/runs/registry.ts reads files, so the webview cannot import it). */
const RUN_STATUSES = ['running', 'finished', 'stopped', 'failed'] as const;

/** A run in a panel: its folder is the key, as the Runs view's items and the serializer know it. */
export const chartRunSchema = z.object({
  key: z.string().min(1),
  name: z.string(),
  stage: z.enum(EXPERIMENT_STAGES),
  status: z.enum(RUN_STATUSES),
});

/**
 * Checked by type and length, not number by number: any float is a value, NaN a missing one. The
 * tag check holds for an array made in another window (a webview's frames are separate realms).
 */
const column = z.custom<Float64Array>(
  (v) => Object.prototype.toString.call(v) === '[object Float64Array]',
  'expected a Float64Array',
);

export const pointsSchema = z
  .object({
    type: z.literal('points'),
    run: z.string().min(1),
    from: z.number().int().min(0),
    steps: column,
    /** Seconds since the epoch. */
    times: column,
    values: z.record(z.string(), column),
  })
  .refine(
    (m) => m.times.length === m.steps.length && Object.values(m.values).every((c) => c.length === m.steps.length),
    'every column has one entry per step',
  );

export const sampleGroupSchema = z.object({ step: z.number().int().min(0), rows: z.array(sampleRowSchema) });

export const hostMessageSchema = z.union([
  /** The runs the panel shows, in legend order; the webview drops the data of runs no longer listed. */
  z.object({ type: z.literal('runs'), runs: z.array(chartRunSchema) }),
  pointsSchema,
  /** Generations by step; a group replaces an earlier one of the same step. */
  z.object({ type: z.literal('samples'), run: z.string().min(1), groups: z.array(sampleGroupSchema) }),
]);

export const EXPORT_FORMATS = ['csv', 'png'] as const;

export const viewMessageSchema = z.discriminatedUnion('type', [
  /** The page loaded (first open, reopen or reload): the host sends the runs and every buffer. */
  z.object({ type: z.literal('ready') }),
  /** Asks the host to offer the workspace's runs to compare. */
  z.object({ type: z.literal('pickRuns') }),
  z.object({ type: z.literal('removeRun'), run: z.string().min(1) }),
  /** CSV text, or a PNG as a data URL; the host asks where to save it. */
  z.object({
    type: z.literal('export'),
    format: z.enum(EXPORT_FORMATS),
    fileName: z.string().min(1).max(200),
    data: z.string().max(64 * 1024 * 1024),
  }),
]);

/** What the webview keeps with getState/setState and the serializer reads after a reload. */
export const chartsStateSchema = z.object({
  runs: z.array(z.string().min(1)),
  smoothing: z.number().min(0).max(0.999),
  xAxis: z.enum(['step', 'episode', 'time']),
  /** The charts drawn on a log scale, by title. */
  logScale: z.array(z.string()),
  /** Charts added beyond the default dashboard, and default charts removed, by title. */
  added: z.array(z.string()),
  removed: z.array(z.string()),
  search: z.string(),
});

export type ChartRun = z.infer<typeof chartRunSchema>;
export type PointsMessage = z.infer<typeof pointsSchema>;
export type SampleGroup = z.infer<typeof sampleGroupSchema>;
export type HostMessage = z.infer<typeof hostMessageSchema>;
export type ViewMessage = z.infer<typeof viewMessageSchema>;
export type ChartsState = z.infer<typeof chartsStateSchema>;
export type XAxis = ChartsState['xAxis'];

export const DEFAULT_STATE: ChartsState = {
  runs: [],
  smoothing: 0.6,
  xAxis: 'step',
  logScale: [],
  added: [],
  removed: [],
  search: '',
};

export const parseHostMessage = (message: unknown): Parsed<HostMessage> => parseWith(hostMessageSchema, message);
export const parseViewMessage = (message: unknown): Parsed<ViewMessage> => parseWith(viewMessageSchema, message);
/** A saved state, or undefined when there is none or it is from an incompatible version. */
export function parseChartsState(state: unknown): ChartsState | undefined {
  const parsed = chartsStateSchema.safeParse(state);
  return parsed.success ? parsed.data : undefined;
}

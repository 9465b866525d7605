/**
 * The charts a run opens with (its stage's dashboard, src/shared/stages.ts) and the ones the person
 * adds or removes.
 */
import { ExperimentStage } from '../../src/protocol/runner';
import { ChartSpec, STAGE_INFO, singleChart } from '../../src/shared/stages';

/** The charts for runs of these stages: their dashboards in order, without `removed`, then `added`. */
export function chartsFor(stages: ExperimentStage[], added: string[], removed: string[]): ChartSpec[] {
  const charts = new Map<string, ChartSpec>();
  for (const stage of new Set(stages)) for (const spec of STAGE_INFO[stage].dashboard) charts.set(spec.title, spec);
  for (const metric of added) if (!charts.has(metric)) charts.set(metric, singleChart(metric));
  for (const title of removed) charts.delete(title);
  return [...charts.values()];
}

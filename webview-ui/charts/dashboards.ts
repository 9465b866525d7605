/**
 * The charts each stage opens with, by the metric names its trainer logs (src/train/trainer.ts for
 * SFT and the reward model, src/train/ppo.ts for PPO), and the charts the person adds or removes.
 */
import { ExperimentStage } from '../../src/protocol/runner';

export interface ChartSpec {
  title: string;
  metrics: string[];
}

const single = (metric: string): ChartSpec => ({ title: metric, metrics: [metric] });

export const DASHBOARDS: Record<ExperimentStage, ChartSpec[]> = {
  sft: ['loss', 'eval_loss', 'learning_rate', 'grad_norm'].map(single),
  comparisons: [],
  rm: ['loss', 'accuracy', 'eval_accuracy', 'margin'].map(single),
  ppo: [
    { title: 'reward', metrics: ['objective/scores', 'objective/rlhf_reward'] },
    ...['objective/kl', 'objective/entropy', 'loss/policy_avg', 'loss/value_avg', 'policy/clipfrac_avg', 'policy/approxkl_avg', 'val/ratio', 'tokens_per_second'].map(single),
  ],
};

/** The charts for runs of these stages: their dashboards in order, without `removed`, then `added`. */
export function chartsFor(stages: ExperimentStage[], added: string[], removed: string[]): ChartSpec[] {
  const charts = new Map<string, ChartSpec>();
  for (const stage of new Set(stages)) for (const spec of DASHBOARDS[stage]) charts.set(spec.title, spec);
  for (const metric of added) if (!charts.has(metric)) charts.set(metric, single(metric));
  for (const title of removed) charts.delete(title);
  return [...charts.values()];
}

/** GRPO's and RLOO's logged metrics, by TRL's GRPOTrainer names, and their samples table. */
import { SampleRow } from '../protocol/runner';
import { Advantages, nanMeanStd, weightedRewards } from './group-advantages';
import { Completion } from './group-batches';
import { GroupStage } from './group-graphs';
import { Prompt } from './prompts';
import { RewardScores } from './rewards/reward-funcs';

const meanOf = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);

/**
 * reward (the weighted sum's mean), reward_std (GRPO: the mean std the advantages were scaled by;
 * RLOO: the rollout's std), each function's rewards/<name>/mean and /std over the completions it
 * scored, and frac_reward_zero_std (groups whose rewards are all equal).
 */
export function rewardMetrics(scores: RewardScores, adv: Advantages, stage: GroupStage): Record<string, number> {
  const rewards = weightedRewards(scores.perFunc, scores.weights);
  const out: Record<string, number> = {};
  scores.names.forEach((name, f) => {
    const { mean, std } = nanMeanStd(scores.perFunc[f]);
    out[`rewards/${name}/mean`] = mean;
    out[`rewards/${name}/std`] = std;
  });
  return {
    ...out,
    reward: meanOf(rewards),
    reward_std: stage === 'grpo' ? meanOf(adv.std) : nanMeanStd(rewards).std,
    frac_reward_zero_std: meanOf(adv.zeroStd.map(Number)),
  };
}

/** Completion lengths in tokens (all, and those that ended with a stop token), and the share cut off. */
export function completionMetrics(rows: Completion[]): Record<string, number> {
  const lengths = rows.map((r) => r.response.length);
  const terminated = rows.filter((r) => r.finished).map((r) => r.response.length);
  const ended = terminated.length ? terminated : [0];
  return {
    'completions/mean_length': meanOf(lengths),
    'completions/min_length': Math.min(...lengths),
    'completions/max_length': Math.max(...lengths),
    'completions/clipped_ratio': rows.filter((r) => !r.finished).length / rows.length,
    'completions/mean_terminated_length': meanOf(ended),
    'completions/min_terminated_length': Math.min(...ended),
    'completions/max_terminated_length': Math.max(...ended),
  };
}

/** The updates' statistics averaged over the num_iterations updates; clip_ratio/low_min and high_max their extremes. */
export function updateMetrics(stats: Record<string, number>[]): Record<string, number> {
  const keys = Object.keys(stats[0] ?? {});
  const out = Object.fromEntries(keys.map((k) => [k, meanOf(stats.map((m) => m[k]))]));
  if ('clip_ratio/low_mean' in out) out['clip_ratio/low_min'] = Math.min(...stats.map((m) => m['clip_ratio/low_mean']));
  if ('clip_ratio/high_mean' in out)
    out['clip_ratio/high_max'] = Math.max(...stats.map((m) => m['clip_ratio/high_mean']));
  return out;
}

/** The first `limit` completions with their weighted reward and each function's reward (null: none). */
export function sampleRows(group: Prompt[], texts: string[], scores: RewardScores, limit = 8): SampleRow[] {
  const total = weightedRewards(scores.perFunc, scores.weights);
  return texts.slice(0, limit).map((response, i) => ({
    prompt: group[i].text,
    response,
    score: total[i],
    rewards: Object.fromEntries(
      scores.names.map((name, f) => [name, Number.isNaN(scores.perFunc[f][i]) ? null : scores.perFunc[f][i]]),
    ),
  }));
}

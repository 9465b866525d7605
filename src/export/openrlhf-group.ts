/**
 * The "grpo" and "rloo" sections as OpenRLHF jobs: train_ppo_ray with the group_norm (GRPO, or
 * dr_grpo without the std) or rloo advantage estimator, n_samples_per_prompt completions per prompt,
 * and the rewards: the TypeScript/JavaScript reward functions, weighted and summed as here, in
 * OpenRLHF's custom reward function file (reward_func.py, given as --remote_rm_url), or a reward model.
 */
import { Experiment } from '../experiment/config';
import { GroupRlSettings, isRewardFuncFile } from '../experiment/group-rl';
import { Unmapped } from './bundle';
import { Rule, mapSettings, modelChoice } from './mapping';
import { ExportedPrompts, OpenRlhfJob, episodeArgs, loopRules } from './openrlhf-job';
import { openRlhfLora } from './peft';
import { pyLiteral } from './python';
import { PythonRewardFunc, rewardBridge } from './reward-bridge';

/** A section's settings as train_ppo_ray's arguments, for `prompts` prompts on `processes` GPUs. */
function groupRules(
  section: 'grpo' | 'rloo',
  s: GroupRlSettings,
  prompts: number | undefined,
  processes: number,
): Record<string, Rule> {
  const rollout = s.per_device_train_batch_size * s.gradient_accumulation_steps;
  const perRollout = rollout / s.num_generations;
  const micro = Math.max(1, Math.floor(s.per_device_train_batch_size / processes));
  const unmapped = (why: string) => ({ unmapped: why });
  return {
    ...loopRules(s, s.max_steps * s.num_iterations),
    model: 'script',
    reward_funcs: 'script',
    reward_weights: 'script',
    max_steps: (steps: number) => episodeArgs(steps * perRollout, prompts),
    num_generations: 'n_samples_per_prompt',
    // One optimizer update on the whole rollout per iteration, as here.
    per_device_train_batch_size: () => ({
      rollout_batch_size: perRollout,
      micro_rollout_batch_size: micro,
      train_batch_size: rollout,
      micro_train_batch_size: micro,
    }),
    gradient_accumulation_steps: 'script', // in train_batch_size
    num_iterations: 'max_epochs',
    learning_rate: 'actor_learning_rate',
    max_completion_length: 'generate_max_len',
    temperature: 'temperature',
    top_p: 'top_p',
    top_k: s.top_k > 0 ? unmapped('train_ppo_ray samples from every token (no top-k)') : 'script',
    beta: (beta: number) =>
      // GRPO's KL (k3) is a loss term; RLOO's is in the reward (k1), OpenRLHF's default.
      section === 'grpo' && beta > 0
        ? { init_kl_coef: beta, use_kl_loss: true, kl_estimator: 'k3' }
        : { init_kl_coef: beta },
    epsilon: 'eps_clip',
    epsilon_high: (high: number) => ({ eps_clip_low_high: [s.epsilon, high] }),
    mask_truncated_completions: s.mask_truncated_completions
      ? unmapped('OpenRLHF keeps truncated completions in the loss')
      : 'script',
    loss_type: unmapped("OpenRLHF's policy loss has no choice of how per-token losses are averaged"),
    scale_rewards:
      'scale_rewards' in s && s.scale_rewards === 'batch'
        ? unmapped("OpenRLHF's group estimators scale by the group's std or not at all, not the batch's")
        : (scale: string) => ({ advantage_estimator: scale === 'none' ? 'dr_grpo' : 'group_norm' }),
    normalize_advantages:
      'normalize_advantages' in s && s.normalize_advantages
        ? unmapped('OpenRLHF does not whiten RLOO advantages across the rollout')
        : 'script',
  };
}

/**
 * OpenRLHF's custom reward function over the bridged functions, weighted and summed (None where a
 * function does not apply).
 */
function rewardFuncFile(funcs: [PythonRewardFunc, number][], labelKey: string | undefined): string {
  return `"""The experiment's reward functions, weighted and summed, as OpenRLHF's custom reward function.

Passed to train_ppo_ray as --remote_rm_url reward_func.py. The completion is each query's text after
its prompt; the dataset column ${labelKey ? `"${labelKey}" (--label_key)` : 'of labels'} reaches the functions under its own name.
"""
import torch

import reward_funcs

FUNCS = [${funcs.map(([f, w]) => `(reward_funcs.${f.python}, ${pyLiteral(w)})`).join(', ')}]
LABEL_KEY = ${pyLiteral(labelKey ?? null)}


def reward_func(queries, prompts, labels, **kwargs):
    completions = [q[len(p):] if q.startswith(p) else q for q, p in zip(queries, prompts)]
    columns = {LABEL_KEY: list(labels)} if LABEL_KEY else {}
    total = [0.0] * len(queries)
    logs = {}
    for fn, weight in FUNCS:
        values = fn(prompts=list(prompts), completions=completions, completion_ids=None, **columns)
        scored = [v for v in values if v is not None]
        for i, v in enumerate(values):
            if v is not None:
                total[i] += weight * v
        if scored:
            logs[f"rewards/{fn.__name__}/mean"] = torch.tensor(sum(scored) / len(scored))
    rewards = torch.tensor(total)
    return {"rewards": rewards, "scores": rewards, "extra_logs": logs}
`;
}

/** The rewards' arguments and files: reward functions through reward_func.py, else one reward model. */
async function rewardArgs(
  section: 'grpo' | 'rloo',
  s: GroupRlSettings,
  prompts: ExportedPrompts,
): Promise<Omit<OpenRlhfJob, 'roles'>> {
  const fileEntries = s.reward_funcs.filter(isRewardFuncFile);
  const modelEntries = s.reward_funcs.flatMap((entry, i) => (isRewardFuncFile(entry) ? [] : [{ entry, i }]));
  const unmapped: Unmapped[] = [];
  const problems: string[] = [];
  if (fileEntries.length) {
    const bridge = await rewardBridge(fileEntries);
    const funcs = s.reward_funcs.flatMap((entry) => (isRewardFuncFile(entry) ? bridge.funcs.get(entry)! : [null]));
    const weighted = funcs.flatMap((f, k) =>
      f ? [[f, s.reward_weights?.[k] ?? 1] as [PythonRewardFunc, number]] : [],
    );
    for (const { entry, i } of modelEntries)
      unmapped.push({
        field: `${section}.reward_funcs.${i}`,
        value: entry,
        why: 'OpenRLHF takes reward functions or a reward model, not both: the job uses the functions',
      });
    const labelKey = prompts.columns.includes('answer') ? 'answer' : prompts.columns[0];
    for (const column of prompts.columns.filter((c) => c !== labelKey))
      unmapped.push({
        field: `${section}.prompts`,
        value: column,
        why: 'OpenRLHF passes one dataset column (--label_key) to a reward function',
      });
    problems.push(
      "the reward functions are the experiment's own TypeScript/JavaScript, bundled in rewards/: every Ray worker needs Node.js 18 or newer on PATH; completionIds is null under OpenRLHF",
    );
    const files = new Map([...bridge.files, ['reward_func.py', rewardFuncFile(weighted, labelKey)]]);
    return { args: { remote_rm_url: 'reward_func.py', label_key: labelKey }, unmapped, problems, files };
  }
  const [first, ...others] = modelEntries;
  const model = modelChoice(`${section}.reward_funcs.${first.i}`, first.entry);
  if (model.problem) problems.push(model.problem);
  for (const { entry, i } of others)
    unmapped.push({ field: `${section}.reward_funcs.${i}`, value: entry, why: 'OpenRLHF takes one reward model' });
  if (s.reward_weights)
    unmapped.push({ field: `${section}.reward_weights`, value: s.reward_weights, why: 'one reward model, unweighted' });
  return { args: { reward_pretrain: model.name ?? 'SET_THE_REWARD_MODEL' }, unmapped, problems, files: new Map() };
}

/** The job of a grpo or rloo section whose prompts are `prompts`. */
export async function groupJob(
  exp: Experiment,
  section: 'grpo' | 'rloo',
  prompts: ExportedPrompts,
  processes: number,
): Promise<OpenRlhfJob> {
  const s = exp[section]!;
  const settings = mapSettings(section, s, groupRules(section, s, prompts.count, processes));
  const lora = openRlhfLora(section, s.peft);
  const chosen = modelChoice(`${section}.model`, s.model, exp.sft ? 'sft' : undefined);
  const policy = chosen.name ? chosen : modelChoice('model', exp.model);
  const rewards = await rewardArgs(section, s, prompts);
  return {
    args: {
      pretrain: policy.name ?? 'SET_THE_POLICY_MODEL',
      advantage_estimator: section === 'rloo' ? 'rloo' : 'group_norm',
      ...rewards.args,
      ...settings.args,
      ...lora.args,
    },
    roles: [...(s.beta > 0 ? ['ref'] : []), ...('reward_pretrain' in rewards.args ? ['reward'] : [])],
    unmapped: [...settings.unmapped, ...lora.unmapped, ...rewards.unmapped],
    problems: [...(policy.problem ? [policy.problem] : []), ...rewards.problems],
    files: rewards.files,
  };
}

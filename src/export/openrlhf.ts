/**
 * `rlhf export openrlhf`: the experiment's PPO, GRPO and RLOO as OpenRLHF jobs on a Ray cluster:
 * the prompts, a `ray job submit` script per section for `openrlhf.cli.train_ppo_ray` with the
 * settings under OpenRLHF's argument names, and a README with the commands and what did not carry over.
 */
import { Experiment, PpoSettings } from '../experiment/config';
import { ExportBundle, Unmapped, readmeEnd } from './bundle';
import { Rule, mapSettings, modelChoice, outputDir } from './mapping';
import { openRlhfLora } from './peft';
import { ExportedPrompts, OpenRlhfJob, episodeArgs, exportedPrompts, loopRules, promptArgs } from './openrlhf-job';
import { groupJob } from './openrlhf-group';
import { ClusterLayout } from './trl-script';

/** PPO's settings as train_ppo_ray's arguments, for `prompts` prompts on `processes` GPUs. */
function ppoRules(ppo: PpoSettings, prompts: number | undefined, processes: number): Record<string, Rule> {
  const iterations = Math.floor(ppo.total_episodes / ppo.per_device_train_batch_size);
  const updates = iterations * ppo.num_ppo_epochs * ppo.num_mini_batches;
  const miniBatch = Math.max(1, Math.floor(ppo.per_device_train_batch_size / ppo.num_mini_batches));
  return {
    ...loopRules(ppo, updates),
    sft_model: 'script',
    reward_model: 'script',
    total_episodes: (episodes: number) => episodeArgs(episodes, prompts),
    per_device_train_batch_size: (batch: number) => ({
      rollout_batch_size: batch,
      micro_rollout_batch_size: Math.max(1, Math.floor(batch / processes)),
    }),
    num_mini_batches: () => ({ train_batch_size: miniBatch }),
    gradient_accumulation_steps: (steps: number) => ({
      micro_train_batch_size: Math.max(1, Math.floor(miniBatch / steps / processes)),
    }),
    num_ppo_epochs: 'max_epochs',
    learning_rate: (lr: number) => ({ actor_learning_rate: lr, critic_learning_rate: lr }),
    response_length: 'generate_max_len',
    temperature: 'temperature',
    missing_eos_penalty: { unmapped: 'OpenRLHF has no penalty for responses without EOS' },
    kl_coef: 'init_kl_coef',
    kl_estimator: 'kl_estimator',
    adaptive_kl: (kl: { target: number; horizon: number }) => ({ kl_target: kl.target, kl_horizon: kl.horizon }),
    whiten_rewards: ppo.whiten_rewards
      ? {
          unmapped: "OpenRLHF's --normalize_reward normalises by running statistics, which is not whitening each batch",
        }
      : () => ({}),
    cliprange: 'eps_clip',
    cliprange_value: 'value_clip',
    vf_coef: {
      unmapped: 'OpenRLHF trains the critic with its own optimizer (critic_learning_rate), not a weighted loss',
    },
    gamma: 'gamma',
    lam: 'lambd',
  };
}

/** `--name value` lines of a shell command, flags (true) alone, false ones left out, lists space-separated. */
function shellArgs(args: Record<string, unknown>): string[] {
  const quote = (v: unknown) => {
    const s = String(v);
    return /^[\w./:@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
  };
  return Object.entries(args).flatMap(([k, v]) =>
    v === true
      ? [`--${k}`]
      : v === false || v === undefined
        ? []
        : [`--${k} ${Array.isArray(v) ? v.map(quote).join(' ') : quote(v)}`],
  );
}

/** The policy and reward model as train_ppo_ray names them, and what a person must do about them first. */
function ppoModels(exp: Experiment, ppo: PpoSettings): { pretrain: string; reward: string; problems: string[] } {
  const policy = modelChoice('ppo.sft_model', ppo.sft_model, exp.sft ? 'sft' : undefined);
  const reward = modelChoice('ppo.reward_model', ppo.reward_model, exp.rm ? 'reward' : undefined);
  const chained = [
    [ppo.sft_model, exp.sft, '--pretrain', 'SFT', 'sft.py', outputDir('sft')],
    [ppo.reward_model, exp.rm, '--reward_pretrain', 'reward model', 'reward.py', outputDir('reward')],
  ] as const;
  const problems = [
    ...[policy, reward].flatMap((m) => (m.problem ? [m.problem] : [])),
    ...chained.flatMap(([field, section, arg, stage, script, dir]) =>
      field === undefined && section
        ? [
            `${arg} is the ${stage} stage's output (\`rlhf export trl\` writes ${script} that trains it): copy that folder here as ${dir}, or change the path`,
          ]
        : [],
    ),
  ];
  return {
    pretrain: policy.name ?? modelChoice('model', exp.model).name ?? 'SET_THE_POLICY_MODEL',
    reward: reward.name ?? 'SET_THE_REWARD_MODEL',
    problems,
  };
}

/** The script that submits a job, one argument per line. */
function submitScript(title: string, args: Record<string, unknown>): string {
  return [
    '#!/usr/bin/env bash',
    `# ${title} exported from an RLHF Studio experiment, for OpenRLHF on a Ray cluster (see README.md).`,
    'set -euo pipefail',
    'ray job submit --address="${RAY_ADDRESS:-http://127.0.0.1:8265}" \\',
    `  --runtime-env-json='{"working_dir": "."}' \\`,
    '  -- python3 -m openrlhf.cli.train_ppo_ray \\',
    shellArgs(args)
      .map((a) => `  ${a}`)
      .join(' \\\n'),
    '',
  ].join('\n');
}

/** PPO with a critic (GAE) against the reward model. */
function ppoJob(exp: Experiment, ppo: PpoSettings, prompts: ExportedPrompts, processes: number): OpenRlhfJob {
  const settings = mapSettings('ppo', ppo, ppoRules(ppo, prompts.count, processes));
  const lora = openRlhfLora('ppo', ppo.peft);
  const models = ppoModels(exp, ppo);
  return {
    args: {
      pretrain: models.pretrain,
      reward_pretrain: models.reward,
      advantage_estimator: 'gae',
      ...settings.args,
      ...lora.args,
    },
    roles: ['ref', 'reward', 'critic'],
    unmapped: [...settings.unmapped, ...lora.unmapped],
    problems: models.problems,
    files: new Map(),
  };
}

const SECTIONS = { ppo: 'PPO', grpo: 'GRPO', rloo: 'RLOO' } as const;
type Section = keyof typeof SECTIONS;

/** The OpenRLHF hand-off of a loaded experiment's online RL sections (ppo, grpo, rloo): one job each. */
export async function openRlhfExport(exp: Experiment, layout: ClusterLayout): Promise<ExportBundle> {
  const sections = (Object.keys(SECTIONS) as Section[]).filter((section) => exp[section]);
  if (!sections.length)
    throw new Error('the experiment has no "ppo", "grpo" or "rloo" section: nothing to export for OpenRLHF');
  const processes = layout.gpus * layout.nodes;
  const files = new Map<string, string | Buffer>();
  const unmapped: Unmapped[] = [];
  const problems: string[] = [];
  const launch: string[] = [];
  for (const section of sections) {
    const settings = exp[section]!;
    const prompts = await exportedPrompts(settings.prompts, settings.columns, `data/${section}-prompts.jsonl`);
    if (prompts.text !== undefined) files.set(prompts.data, prompts.text);
    const job =
      section === 'ppo' ? ppoJob(exp, exp.ppo!, prompts, processes) : await groupJob(exp, section, prompts, processes);
    const nodes = (role: string) => ({
      [`${role}_num_nodes`]: layout.nodes,
      [`${role}_num_gpus_per_node`]: layout.gpus,
    });
    const script = `train_${section}.sh`;
    files.set(
      script,
      submitScript(SECTIONS[section], {
        ...Object.assign({}, ...[...job.roles, 'actor'].map(nodes)),
        colocate_all_models: true,
        vllm_num_engines: processes,
        vllm_tensor_parallel_size: 1,
        vllm_enable_sleep: true,
        deepspeed_enable_sleep: true,
        save_path: outputDir(section),
        save_hf_ckpt: true,
        ...promptArgs(prompts),
        seed: exp.seed,
        zero_stage: layout.zero ?? 2,
        bf16: true,
        ...job.args,
      }),
    );
    for (const [file, text] of job.files) files.set(file, text);
    unmapped.push(...job.unmapped);
    problems.push(...job.problems.filter((p) => !problems.includes(p)));
    launch.push(`bash ${script}`);
  }
  files.set('README.md', readme(exp, layout, sections, launch, problems, unmapped));
  return { files, unmapped, launch };
}

function readme(
  exp: Experiment,
  layout: ClusterLayout,
  sections: Section[],
  launch: string[],
  problems: string[],
  unmapped: Unmapped[],
): string {
  return [
    `# ${exp.name}: ${sections.map((s) => SECTIONS[s]).join(', ')} with OpenRLHF on Ray`,
    '',
    `Exported from an RLHF Studio experiment for ${layout.nodes} machine(s) with ${layout.gpus} GPU(s) each; every model is colocated on the same GPUs.`,
    'Start a Ray cluster with OpenRLHF installed (`ray start --head` on the first machine), then, from this folder:',
    '',
    '```sh',
    ...launch,
    '```',
    '',
    readmeEnd(problems, unmapped),
  ].join('\n');
}

/**
 * `rlhf export openrlhf`: the experiment's PPO as an OpenRLHF job on a Ray cluster: the prompts,
 * a `ray job submit` script for `openrlhf.cli.train_ppo_ray` with the settings under OpenRLHF's
 * argument names, and a README with the command and what did not carry over.
 */
import { ColumnMapping } from '../data/formats/read';
import { parseDataSpec } from '../data/formats/source';
import { loadPrompts } from '../data/formats/stage-data';
import { Experiment, PpoSettings } from '../experiment/config';
import { ExportBundle, Unmapped, readmeEnd } from './bundle';
import { Rule, mapSettings, modelChoice, outputDir } from './mapping';
import { openRlhfLora } from './peft';
import { ClusterLayout } from './trl';

interface ExportedPrompts {
  /** The prompt_data argument: the export's file, or a Hub dataset's repo id. */
  data: string;
  split?: string;
  /** JSONL text of {"prompt"} records, for a local source. */
  text?: string;
  /** The prompts, when known (a local source). */
  count?: number;
  chat: boolean;
  inputKey: string;
}

/** The prompts of `source` (any format the stage reads) as {"prompt"} records, or a Hub dataset as it is. */
async function exportedPrompts(source: string, columns?: ColumnMapping): Promise<ExportedPrompts> {
  const spec = parseDataSpec(source);
  if (spec.hub) return { data: spec.path, split: spec.split, chat: false, inputKey: columns?.prompt ?? 'prompt' };
  const { prompts } = await loadPrompts(source, { columns });
  const text = prompts.map((p) => `${JSON.stringify({ prompt: p.value.prompt, ...p.value.columns })}\n`).join('');
  const chat = prompts.some((p) => Array.isArray(p.value.prompt));
  return { data: 'data/prompts.jsonl', text, count: prompts.length, chat, inputKey: 'prompt' };
}

/** PPO's settings as train_ppo_ray's arguments, for `prompts` prompts on `processes` GPUs. */
function ppoRules(ppo: PpoSettings, prompts: number | undefined, processes: number): Record<string, Rule> {
  const iterations = Math.floor(ppo.total_episodes / ppo.per_device_train_batch_size);
  const updates = iterations * ppo.num_ppo_epochs * ppo.num_mini_batches;
  const miniBatch = Math.max(1, Math.floor(ppo.per_device_train_batch_size / ppo.num_mini_batches));
  return {
    prompts: 'script',
    columns: 'script',
    sft_model: 'script',
    reward_model: 'script',
    total_episodes: (episodes: number) =>
      prompts === undefined
        ? { num_episodes: 1, max_samples: episodes }
        : {
            num_episodes: Math.max(1, Math.ceil(episodes / Math.max(1, prompts))),
            max_samples: Math.min(prompts, episodes),
          },
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
    lr_scheduler_type: (type: string) => ({
      lr_scheduler: type === 'cosine' ? 'cosine_with_min_lr' : type === 'constant' ? 'constant_with_warmup' : type,
    }),
    min_lr_ratio:
      ppo.lr_scheduler_type === 'cosine' && ppo.min_lr_ratio !== 0.1
        ? { unmapped: "OpenRLHF's cosine_with_min_lr floors at 0.1 × the learning rate" }
        : () => ({}),
    warmup_steps: (steps: number) => ({ lr_warmup_ratio: updates > 0 ? Math.min(1, steps / updates) : 0 }),
    weight_decay: 'l2',
    max_grad_norm: 'max_norm',
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
    logging_steps: 'logging_steps',
    save_steps: 'save_steps',
    sample_steps: { unmapped: 'OpenRLHF logs no sample tables' },
    peft: 'script', // ./peft.ts
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

/** The script that submits the job, one argument per line. */
function submitScript(args: Record<string, unknown>): string {
  return [
    '#!/usr/bin/env bash',
    '# PPO exported from an RLHF Studio experiment, for OpenRLHF on a Ray cluster (see README.md).',
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

/** The OpenRLHF hand-off of a loaded experiment's PPO section. */
export async function openRlhfExport(exp: Experiment, layout: ClusterLayout): Promise<ExportBundle> {
  const ppo = exp.ppo;
  if (!ppo) throw new Error('the experiment has no "ppo" section: nothing to export for OpenRLHF');
  const processes = layout.gpus * layout.nodes;
  const prompts = await exportedPrompts(ppo.prompts, ppo.columns);
  const settings = mapSettings('ppo', ppo, ppoRules(ppo, prompts.count, processes));
  const lora = openRlhfLora('ppo', ppo.peft);
  const args = { ...settings.args, ...lora.args };
  const unmapped = [...settings.unmapped, ...lora.unmapped];
  const models = ppoModels(exp, ppo);
  const nodes = (role: string) => ({ [`${role}_num_nodes`]: layout.nodes, [`${role}_num_gpus_per_node`]: layout.gpus });
  const script = submitScript({
    ...nodes('ref'),
    ...nodes('reward'),
    ...nodes('critic'),
    ...nodes('actor'),
    colocate_all_models: true,
    vllm_num_engines: processes,
    vllm_tensor_parallel_size: 1,
    vllm_enable_sleep: true,
    deepspeed_enable_sleep: true,
    pretrain: models.pretrain,
    reward_pretrain: models.reward,
    save_path: outputDir('ppo'),
    save_hf_ckpt: true,
    prompt_data: prompts.data,
    prompt_split: prompts.split,
    input_key: prompts.inputKey,
    apply_chat_template: prompts.chat,
    advantage_estimator: 'gae',
    seed: exp.seed,
    zero_stage: layout.zero ?? 2,
    bf16: true,
    ...args,
  });
  const files = new Map<string, string | Buffer>([
    ...(prompts.text === undefined ? [] : ([[prompts.data, prompts.text]] as const)),
    ['train_ppo.sh', script],
    ['README.md', readme(exp, layout, models.problems, unmapped)],
  ]);
  return { files, unmapped, launch: ['bash train_ppo.sh'] };
}

function readme(exp: Experiment, layout: ClusterLayout, problems: string[], unmapped: Unmapped[]): string {
  return [
    `# ${exp.name}: PPO with OpenRLHF on Ray`,
    '',
    `Exported from an RLHF Studio experiment for ${layout.nodes} machine(s) with ${layout.gpus} GPU(s) each; every model is colocated on the same GPUs.`,
    'Start a Ray cluster with OpenRLHF installed (`ray start --head` on the first machine), then, from this folder:',
    '',
    '```sh',
    'bash train_ppo.sh',
    '```',
    '',
    readmeEnd(problems, unmapped),
  ].join('\n');
}

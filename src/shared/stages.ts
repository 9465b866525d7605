/**
 * What the extension, the CLI and the charts know about each experiment stage, in one place: adding
 * a stage means an entry here, its runner in src/runner/stages.ts, and its command in package.json.
 * Free of engine and VS Code imports: the host, the CLI and the webviews all read it.
 */
import { ExperimentStage } from '../protocol/runner';

/** A chart of one or more metrics (TRL's names) on a shared axis. */
export interface ChartSpec {
  title: string;
  metrics: string[];
}

/** What a finished run's notification can offer next. */
export type NextStep = 'Generate with Model' | 'Open Folder' | 'Open Labeling';

export interface StageInfo {
  /** How the stage is named in views and titles. */
  label: string;
  /** What the stage does, in messages about it ("Supervised fine-tuning needs a trusted workspace"). */
  work: string;
  /** The command palette action that starts it (contributed in package.json). */
  command: string;
  /** `rlhf <stage>`: its description, and the help of `--steps` for stages that train (and so resume). */
  cli: { description: string; steps?: string };
  /** The metric a run is judged by at a glance in the Runs view, first one present wins. */
  keyMetrics: string[];
  /** The charts a run of this stage opens with, by the metric names its trainer logs. */
  dashboard: ChartSpec[];
  /** Whether its model is a language model one can generate with. */
  generates: boolean;
  /**
   * The models in its `checkpoint-<step>/`, each in the subfolder of its name; none: the checkpoint
   * is the model folder itself. The first is the one to generate with.
   */
  checkpointModels: readonly string[];
  nextSteps: NextStep[];
}

export const singleChart = (metric: string): ChartSpec => ({ title: metric, metrics: [metric] });

/** GRPO's and RLOO's charts, by TRL's GRPO metric names (each reward function's come beside them). */
const groupRlDashboard: ChartSpec[] = [
  { title: 'reward', metrics: ['reward', 'reward_std'] },
  ...['kl', 'entropy', 'frac_reward_zero_std', 'completions/mean_length', 'completions/clipped_ratio'].map(singleChart),
  { title: 'clip ratio', metrics: ['clip_ratio/region_mean', 'clip_ratio/low_mean', 'clip_ratio/high_mean'] },
];

export const STAGE_INFO: Readonly<Record<ExperimentStage, StageInfo>> = {
  sft: {
    label: 'SFT',
    work: 'Supervised fine-tuning',
    command: 'rlhf.trainSft',
    cli: {
      description: 'supervised fine-tuning, as set in the "sft" section of an experiment config',
      steps: 'override max_steps',
    },
    keyMetrics: ['eval_loss', 'loss'],
    dashboard: ['loss', 'eval_loss', 'learning_rate', 'grad_norm'].map(singleChart),
    generates: true,
    checkpointModels: [],
    nextSteps: ['Generate with Model', 'Open Folder'],
  },
  comparisons: {
    label: 'Comparisons',
    work: 'Generating comparisons',
    command: 'rlhf.generateComparisons',
    cli: {
      description:
        'sample answers to the "comparisons" section\'s prompts and queue pairs of them for labeling (run again to go on)',
    },
    keyMetrics: [],
    dashboard: [],
    generates: false,
    checkpointModels: [],
    nextSteps: ['Open Labeling'],
  },
  rm: {
    label: 'Reward Model',
    work: 'Reward model training',
    command: 'rlhf.trainRewardModel',
    cli: {
      description: 'train a reward model on preference pairs, as set in the "rm" section of an experiment config',
      steps: 'override max_steps',
    },
    keyMetrics: ['eval_accuracy', 'accuracy'],
    dashboard: ['loss', 'accuracy', 'eval_accuracy', 'margin'].map(singleChart),
    generates: false,
    checkpointModels: [],
    nextSteps: ['Open Folder'],
  },
  ppo: {
    label: 'PPO',
    work: 'PPO',
    command: 'rlhf.runPpo',
    cli: {
      description: 'PPO against a reward model, as set in the "ppo" section of an experiment config',
      steps: 'override the number of iterations',
    },
    keyMetrics: ['objective/rlhf_reward', 'objective/scores'],
    dashboard: [
      { title: 'reward', metrics: ['objective/scores', 'objective/rlhf_reward'] },
      ...[
        'objective/kl',
        'objective/entropy',
        'loss/policy_avg',
        'loss/value_avg',
        'policy/clipfrac_avg',
        'policy/approxkl_avg',
        'val/ratio',
        'tokens_per_second',
      ].map(singleChart),
    ],
    generates: true,
    checkpointModels: ['policy', 'value'],
    nextSteps: ['Generate with Model', 'Open Folder'],
  },
  dpo: {
    label: 'DPO',
    work: 'DPO training',
    command: 'rlhf.trainDpo',
    cli: {
      description:
        'direct preference optimization on preference pairs, as set in the "dpo" section of an experiment config',
      steps: 'override max_steps',
    },
    keyMetrics: ['eval_rewards/accuracies', 'rewards/accuracies'],
    dashboard: [
      { title: 'loss', metrics: ['loss', 'eval_loss'] },
      { title: 'rewards/accuracies', metrics: ['rewards/accuracies', 'eval_rewards/accuracies'] },
      { title: 'rewards', metrics: ['rewards/chosen', 'rewards/rejected'] },
      { title: 'rewards/margins', metrics: ['rewards/margins', 'eval_rewards/margins'] },
      { title: 'logps', metrics: ['logps/chosen', 'logps/rejected'] },
      { title: 'logits', metrics: ['logits/chosen', 'logits/rejected'] },
      ...['learning_rate', 'grad_norm'].map(singleChart),
    ],
    generates: true,
    checkpointModels: [],
    nextSteps: ['Generate with Model', 'Open Folder'],
  },
  grpo: {
    label: 'GRPO',
    work: 'GRPO (it runs the reward functions of the workspace)',
    command: 'rlhf.trainGrpo',
    cli: {
      description:
        'GRPO against reward functions and/or reward models, as set in the "grpo" section of an experiment config',
      steps: 'override max_steps (rollouts)',
    },
    keyMetrics: ['reward'],
    dashboard: groupRlDashboard,
    generates: true,
    checkpointModels: [],
    nextSteps: ['Generate with Model', 'Open Folder'],
  },
  rloo: {
    label: 'RLOO',
    work: 'RLOO (it runs the reward functions of the workspace)',
    command: 'rlhf.trainRloo',
    cli: {
      description:
        'RLOO against reward functions and/or reward models, as set in the "rloo" section of an experiment config',
      steps: 'override max_steps (rollouts)',
    },
    keyMetrics: ['reward'],
    dashboard: groupRlDashboard,
    generates: true,
    checkpointModels: [],
    nextSteps: ['Generate with Model', 'Open Folder'],
  },
};

export function stageLabel(stage: ExperimentStage): string {
  return STAGE_INFO[stage].label;
}

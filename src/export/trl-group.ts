/**
 * The "grpo" and "rloo" sections as TRL scripts: the prompts with their other columns (which TRL
 * passes to the reward functions, as here), GRPOConfig / RLOOConfig names, and the rewards: the
 * TypeScript/JavaScript reward functions through the Node.js bridge (./reward-bridge.ts), reward
 * models by name.
 */
import { isRewardFuncFile } from '../experiment/group-rl';
import { Experiment } from '../experiment/config';
import { ModelChoice, Rule, mapSettings, modelChoice, outputDir } from './mapping';
import { loraScript } from './peft';
import { pyCall } from './python';
import { RewardBridge } from './reward-bridge';
import { ExportedData, datasetLines } from './trl-data';
import { ClusterLayout, StageScript, floorUnmapped, launchDoc, modelLines, script, trainingRules } from './trl-script';

const TRL_NAMES = {
  grpo: { config: 'GRPOConfig', trainer: 'GRPOTrainer', title: 'GRPO' },
  rloo: { config: 'RLOOConfig', trainer: 'RLOOTrainer', title: 'RLOO' },
} as const;

const NODE_NEEDED =
  "the reward functions are the experiment's own TypeScript/JavaScript, bundled in rewards/: every machine that trains needs Node.js 18 or newer on PATH (reward_funcs.py starts it); their logMetric calls log nothing under TRL";

/** Fields with the same name and meaning in TRL. */
const SAME_NAMES = [
  'reward_weights',
  'num_generations',
  'num_iterations',
  'max_completion_length',
  'temperature',
  'top_p',
  'beta',
  'epsilon',
  'epsilon_high',
  'mask_truncated_completions',
  'loss_type',
  'scale_rewards',
  'normalize_advantages',
];

/**
 * A rollout here is one TRL generation batch, followed by num_iterations optimizer steps: TRL
 * counts steps in optimizer updates, so the counts in rollouts scale by num_iterations.
 */
const inUpdates =
  (name: string) =>
  (rollouts: number, s: Record<string, unknown>): Record<string, unknown> => ({
    [name]: rollouts * (s.num_iterations as number),
  });

function groupRules(section: 'grpo' | 'rloo', layout: ClusterLayout): Record<string, Rule> {
  return {
    ...trainingRules(layout),
    ...Object.fromEntries(SAME_NAMES.map((name) => [name, name])),
    max_steps: inUpdates('max_steps'),
    save_steps: inUpdates('save_steps'),
    logging_steps: inUpdates('logging_steps'),
    top_k: (k: number) => (k > 0 ? { top_k: k } : {}),
    sample_steps:
      section === 'grpo'
        ? () => ({ log_completions: true }) // at every logging step
        : { unmapped: "TRL's RLOOConfig has no setting to log sample completions" },
    prompts: 'script',
    reward_funcs: 'script',
  };
}

/** The reward_funcs list's Python elements, in the section's order, and the models a person must place. */
function rewardList(
  section: 'grpo' | 'rloo',
  entries: string[],
  bridge: RewardBridge,
): { items: string[]; imports: string[]; models: ModelChoice[] } {
  const items: string[] = [];
  const imports: string[] = [];
  const models: ModelChoice[] = [];
  entries.forEach((entry, i) => {
    if (isRewardFuncFile(entry)) {
      const names = bridge.funcs.get(entry)!.map((f) => f.python);
      items.push(...names);
      imports.push(...names);
      return;
    }
    const model = modelChoice(`${section}.reward_funcs.${i}`, entry);
    models.push(model);
    items.push(JSON.stringify(model.name ?? `SET_REWARD_MODEL_${i}`));
  });
  return { items, imports, models };
}

/** The TRL script of a grpo or rloo section whose prompts are `data`. */
export function groupRlScript(
  exp: Experiment,
  section: 'grpo' | 'rloo',
  layout: ClusterLayout,
  bridge: RewardBridge,
  data: ExportedData,
): StageScript {
  const settings = exp[section]!;
  const names = TRL_NAMES[section];
  const { args, unmapped } = mapSettings(section, settings, groupRules(section, layout));
  const chosen = modelChoice(`${section}.model`, settings.model, exp.sft ? 'sft' : undefined);
  const model = chosen.name ? chosen : modelChoice('model', exp.model);
  const rewards = rewardList(section, settings.reward_funcs, bridge);
  const lora = loraScript(section, settings.peft, 'CAUSAL_LM');
  const file = `${section}.py`;
  const source = script(
    launchDoc(names.title, file),
    [
      'from datasets import load_dataset',
      ...lora.imports,
      'from transformers import AutoModelForCausalLM, AutoTokenizer',
      `from trl import ${names.config}, ${names.trainer}`,
      ...(rewards.imports.length ? [`from reward_funcs import ${rewards.imports.join(', ')}`] : []),
    ],
    [
      modelLines(model, 'AutoModelForCausalLM'),
      datasetLines(data, 0, exp.seed, settings.columns),
      `reward_funcs = [${rewards.items.join(', ')}]`,
      `args = ${pyCall(names.config, { output_dir: outputDir(section), seed: exp.seed, ...args })}`,
      ...lora.lines,
      `trainer = ${names.trainer}(model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset, processing_class=tokenizer${lora.trainerArg})`,
      'trainer.train()',
      'trainer.save_model()',
    ],
  );
  const problems = [model, ...rewards.models].flatMap((m) => (m.problem ? [m.problem] : []));
  if (rewards.imports.length) problems.push(NODE_NEEDED);
  return {
    file,
    source,
    unmapped: [...unmapped, ...lora.unmapped, ...floorUnmapped(section, settings)],
    problems,
  };
}

/**
 * `rlhf export trl`: an experiment as a folder that TRL trains on any number of GPUs with
 * accelerate: its data in TRL's formats, a script per stage with the settings under TRL's config
 * names, an accelerate config, and a README with the commands and what did not carry over.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ColumnMapping } from '../data/formats/read';
import { parseDataSpec } from '../data/formats/source';
import { Experiment } from '../experiment/config';
import { ExportBundle, Unmapped, readmeEnd } from './bundle';
import { mapSettings, modelChoice, outputDir } from './mapping';
import { loraScript } from './peft';
import { pyCall } from './python';
import { ClusterLayout, StageScript, floorUnmapped, launchDoc, modelLines, script, trainingRules } from './trl-script';
import { isRewardFuncFile } from '../experiment/group-rl';
import { rewardBridge } from './reward-bridge';
import { ExportedData, datasetLines, preferenceData, promptData, sftData } from './trl-data';
import { groupRlScript } from './trl-group';

function sftScript(exp: Experiment, layout: ClusterLayout, data: ExportedData): StageScript {
  const sft = exp.sft!;
  const { args, unmapped } = mapSettings('sft', sft, {
    ...trainingRules(layout),
    max_length: 'max_length',
    gradient_checkpointing: 'gradient_checkpointing',
    sample_prompts: sft.sample_prompts.length
      ? { unmapped: 'TRL logs no sample generations during training' }
      : 'script',
  });
  const model = modelChoice('model', exp.model);
  const lora = loraScript('sft', sft.peft, 'CAUSAL_LM');
  const source = script(
    launchDoc('Supervised fine-tuning', 'sft.py'),
    [
      'from datasets import load_dataset',
      ...lora.imports,
      'from transformers import AutoModelForCausalLM, AutoTokenizer',
      'from trl import SFTConfig, SFTTrainer',
    ],
    [
      modelLines(model, 'AutoModelForCausalLM'),
      datasetLines(data, sft.eval_fraction, exp.seed, sft.columns),
      `args = ${pyCall('SFTConfig', { output_dir: outputDir('sft'), seed: exp.seed, ...args })}`,
      ...lora.lines,
      `trainer = SFTTrainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, processing_class=tokenizer${lora.trainerArg})`,
      'trainer.train()',
      'trainer.save_model()',
    ],
  );
  const notCarried = [...unmapped, ...lora.unmapped, ...floorUnmapped('sft', sft)];
  return { file: 'sft.py', source, unmapped: notCarried, problems: model.problem ? [model.problem] : [] };
}

function rewardScript(exp: Experiment, layout: ClusterLayout, data: ExportedData): StageScript {
  const rm = exp.rm!;
  const { args, unmapped } = mapSettings('rm', rm, {
    ...trainingRules(layout),
    max_length: 'max_length',
    center_rewards_coefficient: 'center_rewards_coefficient',
    include_ties: rm.include_ties
      ? { unmapped: "TRL's RewardTrainer trains on decided pairs only; ties and both-bad labels are left out" }
      : 'script',
  });
  const chosen = modelChoice('rm.model', rm.model, exp.sft ? 'sft' : undefined);
  const model = chosen.name ? chosen : modelChoice('model', exp.model);
  const lora = loraScript('rm', rm.peft, 'SEQ_CLS');
  const source = script(
    launchDoc('Reward model training', 'reward.py'),
    [
      'from datasets import load_dataset',
      ...lora.imports,
      'from transformers import AutoModelForSequenceClassification, AutoTokenizer',
      'from trl import RewardConfig, RewardTrainer',
    ],
    [
      modelLines(model, 'AutoModelForSequenceClassification', ', num_labels=1'),
      'if tokenizer.pad_token is None:',
      '    tokenizer.pad_token = tokenizer.eos_token',
      'model.config.pad_token_id = tokenizer.pad_token_id',
      datasetLines(data, rm.eval_fraction, exp.seed, rm.columns),
      `args = ${pyCall('RewardConfig', { output_dir: outputDir('reward'), seed: exp.seed, ...args })}`,
      ...lora.lines,
      `trainer = RewardTrainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, processing_class=tokenizer${lora.trainerArg})`,
      'trainer.train()',
      'trainer.save_model()',
    ],
  );
  const notCarried = [...unmapped, ...lora.unmapped, ...floorUnmapped('rm', rm)];
  return { file: 'reward.py', source, unmapped: notCarried, problems: model.problem ? [model.problem] : [] };
}

function dpoScript(exp: Experiment, layout: ClusterLayout, data: ExportedData): StageScript {
  const dpo = exp.dpo!;
  const { args, unmapped } = mapSettings('dpo', dpo, {
    ...trainingRules(layout),
    ...Object.fromEntries(
      [
        'beta',
        'loss_type',
        'label_smoothing',
        'rpo_alpha',
        'max_prompt_length',
        'max_completion_length',
        'max_length',
        'truncation_mode',
      ].map((name) => [name, name]),
    ),
    sample_prompts: dpo.sample_prompts.length
      ? { unmapped: 'TRL logs no sample generations during training' }
      : 'script',
  });
  const chosen = modelChoice('dpo.model', dpo.model, exp.sft ? 'sft' : undefined);
  const model = chosen.name ? chosen : modelChoice('model', exp.model);
  // As here, the reference's log-probs are computed once before training.
  const config = { output_dir: outputDir('dpo'), seed: exp.seed, precompute_ref_log_probs: true, ...args };
  // With peft_config, TRL's reference is the model with its adapter off, as here.
  const lora = loraScript('dpo', dpo.peft, 'CAUSAL_LM');
  const source = script(
    launchDoc('Direct preference optimization', 'dpo.py'),
    [
      'from datasets import load_dataset',
      ...lora.imports,
      'from transformers import AutoModelForCausalLM, AutoTokenizer',
      'from trl import DPOConfig, DPOTrainer',
    ],
    [
      modelLines(model, 'AutoModelForCausalLM'),
      datasetLines(data, dpo.eval_fraction, exp.seed, dpo.columns),
      `args = ${pyCall('DPOConfig', config)}`,
      ...lora.lines,
      `trainer = DPOTrainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, processing_class=tokenizer${lora.trainerArg})`,
      'trainer.train()',
      'trainer.save_model()',
    ],
  );
  const notCarried = [...unmapped, ...lora.unmapped, ...floorUnmapped('dpo', dpo)];
  return { file: 'dpo.py', source, unmapped: notCarried, problems: model.problem ? [model.problem] : [] };
}

/** accelerate's config for `layout`: data parallel over every GPU, or DeepSpeed ZeRO. */
export function accelerateConfig(layout: ClusterLayout): string {
  const processes = layout.gpus * layout.nodes;
  const distributed = layout.zero ? 'DEEPSPEED' : processes > 1 ? 'MULTI_GPU' : 'NO';
  const lines = [
    'compute_environment: LOCAL_MACHINE',
    `distributed_type: ${distributed}`,
    ...(layout.zero
      ? [
          'deepspeed_config:',
          `  zero_stage: ${layout.zero}`,
          '  offload_optimizer_device: none',
          '  offload_param_device: none',
          `  zero3_init_flag: ${layout.zero === 3}`,
        ]
      : []),
    'machine_rank: 0',
    "main_process_ip: null # the first machine's address when num_machines > 1",
    'main_process_port: 29500',
    'mixed_precision: bf16',
    `num_machines: ${layout.nodes}`,
    `num_processes: ${processes}`,
    'rdzv_backend: static',
    'same_network: true',
    'use_cpu: false',
  ];
  return `${lines.join('\n')}\n`;
}

/** The settings of sections that have no TRL script. */
function sectionsWithoutScript(exp: Experiment): Unmapped[] {
  const out: Unmapped[] = [];
  if (exp.comparisons)
    out.push({
      field: 'comparisons',
      value: { prompts: path.basename(exp.comparisons.prompts) },
      why: 'sampling pairs to label happens in the editor; the labeled pairs are exported as data/preferences.jsonl',
    });
  if (exp.ppo)
    out.push({
      field: 'ppo',
      value: { prompts: path.basename(exp.ppo.prompts) },
      why: 'TRL no longer ships a PPO trainer: `rlhf export openrlhf` writes the PPO job for OpenRLHF on Ray',
    });
  const top: [string, unknown, string][] = [
    [
      'torch_dtype',
      exp.torch_dtype,
      'the scripts train in bf16 (accelerate_config.yaml) and save as transformers does',
    ],
    ['runtime', exp.runtime, "this machine's execution provider; accelerate places the processes on the GPUs"],
    ['model_size', exp.model_size, 'a size of a built-in preset, which has no Hub counterpart'],
    ['chat_template_kwargs', exp.chat_template_kwargs, 'the chat template is applied by TRL with its defaults'],
  ];
  for (const [field, value, why] of top)
    if (
      value !== undefined &&
      !(field === 'torch_dtype' && value === 'auto') &&
      !(field === 'runtime' && isDefaultRuntime(value))
    )
      out.push({ field, value, why });
  return out;
}

const isDefaultRuntime = (v: unknown) => JSON.stringify(v) === JSON.stringify({ provider: 'auto' });

/** A preference stage's data, or undefined when its local file holds no pair with a winner yet. */
async function labeledPairs(source: string, columns: ColumnMapping | undefined, file: string) {
  const spec = parseDataSpec(source);
  if (!spec.hub && !fs.existsSync(spec.path)) return undefined;
  const data = await preferenceData(source, columns, file);
  return 'count' in data && data.count === 0 ? undefined : data;
}

const NO_LABELS = 'its preference file holds no decided pairs yet: label comparisons, then export again';

/** The TRL hand-off of a loaded experiment (paths absolute, as loadExperiment leaves them). */
export async function trlExport(exp: Experiment, layout: ClusterLayout): Promise<ExportBundle> {
  const files = new Map<string, string | Buffer>();
  const scripts: StageScript[] = [];
  const unmapped = sectionsWithoutScript(exp);
  const add = (script: StageScript, data: ExportedData) => {
    scripts.push(script);
    if ('file' in data) files.set(data.file, data.text);
  };
  if (exp.sft) {
    const data = await sftData(exp.sft.data, exp.sft.columns, 'data/sft.jsonl');
    add(sftScript(exp, layout, data), data);
  }
  for (const [section, file, make] of [
    ['rm', 'data/preferences.jsonl', rewardScript],
    ['dpo', 'data/dpo-preferences.jsonl', dpoScript],
  ] as const) {
    const settings = exp[section];
    if (!settings) continue;
    const data = await labeledPairs(settings.data, settings.columns, file);
    if (data) add(make(exp, layout, data), data);
    else unmapped.push({ field: section, value: { data: path.basename(settings.data) }, why: NO_LABELS });
  }
  const groups = (['grpo', 'rloo'] as const).filter((section) => exp[section]);
  if (groups.length) {
    const rewardFiles = groups.flatMap((section) => exp[section]!.reward_funcs.filter(isRewardFuncFile));
    const bridge = await rewardBridge(rewardFiles);
    if (rewardFiles.length) for (const [file, text] of bridge.files) files.set(file, text);
    for (const section of groups) {
      const settings = exp[section]!;
      const data = await promptData(settings.prompts, settings.columns, `data/${section}-prompts.jsonl`);
      add(groupRlScript(exp, section, layout, bridge, data), data);
    }
  }
  if (!scripts.length)
    throw new Error('the experiment has no stage TRL trains (sft, rm, dpo, grpo, rloo): nothing to export');
  for (const s of scripts) {
    files.set(s.file, s.source);
    unmapped.push(...s.unmapped);
  }
  files.set('accelerate_config.yaml', accelerateConfig(layout));
  const launch = scripts.map((s) => `accelerate launch --config_file accelerate_config.yaml ${s.file}`);
  const problems = [...new Set(scripts.flatMap((s) => s.problems))];
  files.set('README.md', readme(exp, layout, launch, problems, unmapped));
  return { files, unmapped, launch };
}

function readme(
  exp: Experiment,
  layout: ClusterLayout,
  launch: string[],
  problems: string[],
  unmapped: Unmapped[],
): string {
  const processes = layout.gpus * layout.nodes;
  return [
    `# ${exp.name}: training with TRL`,
    '',
    `Exported from an RLHF Studio experiment for ${layout.nodes} machine(s) with ${layout.gpus} GPU(s) each${layout.zero ? ` (DeepSpeed ZeRO-${layout.zero})` : ''}.`,
    'Install `trl`, `transformers`, `datasets` and `accelerate` (and `deepspeed` for ZeRO), then run, in order:',
    '',
    '```sh',
    ...launch,
    '```',
    '',
    `Each stage saves its model in \`outputs/<stage>/\`; a later stage starts from an earlier one's output where the experiment chains them.`,
    processes > 1
      ? `Batch sizes are per GPU: each is the experiment's batch divided by the ${processes} processes where it divides evenly, so the global batch stays the same.`
      : '',
    `On several machines, set \`main_process_ip\` in accelerate_config.yaml and run the same command on each with \`--machine_rank\`.`,
    '',
    readmeEnd(problems, unmapped),
  ].join('\n');
}

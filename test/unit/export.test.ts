/**
 * Exports to TRL and OpenRLHF: the data in TRL's formats, scripts that parse, arguments that the
 * targets declare (a fixture list of their names), every setting either mapped or listed as not
 * carried over, and clear refusals.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { exportExperiment } from '../../src/export';
import { scratchFolder } from '../helpers/checkpoints';
import { exportTo, scriptArgs, undeclared, undeclaredKwargs } from '../helpers/exports';
import { cli } from '../helpers/processes';
import { hasPython } from '../helpers/python-scripts';

const { freshDir } = scratchFolder('export');

const jsonl = (rows: object[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');

/** A workspace with a Hub-model experiment of every stage. */
function workspace(overrides: Record<string, unknown> = {}): { dir: string; config: string } {
  const dir = freshDir();
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'sft.jsonl'), jsonl([{ prompt: 'Q: cat?', completion: ' meow' }]));
  fs.writeFileSync(
    path.join(dir, 'prefs.jsonl'),
    jsonl([
      { prompt: 'Q: dog?', chosen: ' woof', rejected: ' meow' },
      { label: 'tie', prompt: 'Q: cow?', response_a: ' moo', response_b: ' mooo' },
    ]),
  );
  fs.writeFileSync(
    path.join(dir, 'prompts.jsonl'),
    jsonl([{ prompt: 'Q: owl?' }, { prompt: [{ role: 'user', content: 'What does a duck say?' }] }]),
  );
  const experiment = {
    name: 'animals',
    model: 'Qwen/Qwen3-0.6B',
    sft: { data: 'sft.jsonl', min_lr_ratio: 0.1, lr_scheduler_type: 'cosine', max_steps: 120 },
    comparisons: { prompts: 'prompts.jsonl' },
    rm: { data: 'prefs.jsonl', lr_scheduler_type: 'linear', min_lr_ratio: 0.2, center_rewards_coefficient: 0.01 },
    ppo: { prompts: 'prompts.jsonl', total_episodes: 64, per_device_train_batch_size: 8, vf_coef: 0.2 },
    grpo: { prompts: 'prompts.jsonl', reward_funcs: ['rewards.ts'], num_generations: 2 },
    ...overrides,
  };
  fs.writeFileSync(
    path.join(dir, 'rewards.ts'),
    'export const short = ({ completions }) => completions.map((c) => -c.length);\n',
  );
  const config = path.join(dir, 'animals.rlhf.json');
  fs.writeFileSync(config, JSON.stringify(experiment));
  return { dir, config };
}

test('TRL: a script per stage with TRL config names, the data in TRL formats, and what did not carry over', async (t) => {
  const { dir, config } = workspace();
  const { out, bundle } = await exportTo('trl', { dir, config }, { gpus: 4 });
  for (const file of [
    'sft.py',
    'reward.py',
    'accelerate_config.yaml',
    'README.md',
    'data/sft.jsonl',
    'data/preferences.jsonl',
  ])
    assert.ok(fs.existsSync(path.join(out, file)), file);

  const sft = fs.readFileSync(path.join(out, 'sft.py'), 'utf8');
  assert.deepEqual(undeclaredKwargs(sft, 'SFTConfig'), []);
  assert.match(sft, /lr_scheduler_type="cosine_with_min_lr"/);
  assert.match(sft, /lr_scheduler_kwargs=\{"min_lr_rate": 0\.1\}/);
  assert.match(sft, /per_device_train_batch_size=2,/, 'the global batch of 8 over 4 GPUs');
  assert.match(sft, /MODEL = "Qwen\/Qwen3-0\.6B"/);
  const reward = fs.readFileSync(path.join(out, 'reward.py'), 'utf8');
  assert.deepEqual(undeclaredKwargs(reward, 'RewardConfig'), []);
  assert.match(reward, /MODEL = "outputs\/sft"/, 'the reward model starts from the SFT output');
  assert.match(reward, /center_rewards_coefficient=0\.01/);

  const prefs = fs.readFileSync(path.join(out, 'data/preferences.jsonl'), 'utf8').trim().split('\n');
  assert.deepEqual(
    prefs.map((l) => JSON.parse(l)),
    [{ prompt: 'Q: dog?', chosen: ' woof', rejected: ' meow' }],
  );
  assert.match(fs.readFileSync(path.join(out, 'accelerate_config.yaml'), 'utf8'), /num_processes: 4\n/);

  const fields = bundle.unmapped.map((u) => u.field);
  assert.deepEqual(fields.sort(), ['comparisons', 'ppo', 'rm.min_lr_ratio']);
  const readme = fs.readFileSync(path.join(out, 'README.md'), 'utf8');
  assert.match(
    readme,
    /accelerate launch --config_file accelerate_config\.yaml sft\.py\naccelerate launch --config_file accelerate_config\.yaml reward\.py/,
  );
  assert.match(readme, /\| `rm\.min_lr_ratio` \| `0\.2` \| transformers' linear schedule decays to 0 \|/);

  if (!hasPython) return t.skip('python3 is not installed: the scripts were not compiled');
  for (const file of ['sft.py', 'reward.py', 'grpo.py', 'reward_funcs.py'])
    execFileSync('python3', ['-m', 'py_compile', path.join(out, file)]);
});

test('TRL: a dpo section becomes dpo.py with DPOConfig names, the reference log-probs precomputed as here', async (t) => {
  const { dir, config } = workspace({
    sft: undefined,
    rm: undefined,
    dpo: { data: 'prefs.jsonl', beta: 0.2, loss_type: 'ipo', max_prompt_length: 64, sample_prompts: ['Q: hen?'] },
  });
  const { out, bundle } = await exportTo('trl', { dir, config }, { gpus: 1 });
  const dpo = fs.readFileSync(path.join(out, 'dpo.py'), 'utf8');
  assert.deepEqual(undeclaredKwargs(dpo, 'DPOConfig'), []);
  assert.match(dpo, /beta=0\.2,/);
  assert.match(dpo, /loss_type="ipo",/);
  assert.match(dpo, /max_prompt_length=64,/);
  assert.match(dpo, /precompute_ref_log_probs=True,/);
  assert.match(dpo, /MODEL = "Qwen\/Qwen3-0\.6B"/);
  const pairs = fs.readFileSync(path.join(out, 'data/dpo-preferences.jsonl'), 'utf8').trim().split('\n');
  assert.deepEqual(
    pairs.map((l) => JSON.parse(l)),
    [{ prompt: 'Q: dog?', chosen: ' woof', rejected: ' meow' }],
  );
  assert.ok(bundle.unmapped.some((u) => u.field === 'dpo.sample_prompts'));
  if (!hasPython) return t.skip('python3 is not installed: the script was not compiled');
  execFileSync('python3', ['-m', 'py_compile', path.join(out, 'dpo.py')]);
});

test('OpenRLHF: a ray job submit of train_ppo_ray with its argument names, chat prompts templated', async () => {
  const { dir, config } = workspace();
  const { out, bundle } = await exportTo('openrlhf', { dir, config }, { gpus: 2, nodes: 2 });
  const script = fs.readFileSync(path.join(out, 'train_ppo.sh'), 'utf8');
  execFileSync('bash', ['-n', path.join(out, 'train_ppo.sh')]);
  assert.match(script, /ray job submit .*\n.*\n {2}-- python3 -m openrlhf\.cli\.train_ppo_ray/);
  const names = scriptArgs(script);
  assert.ok(names.length > 30, `${names.length} arguments`);
  assert.deepEqual(undeclared(names, 'train_ppo_ray'), []);
  const arg = (name: string) => new RegExp(`^  --${name} (\\S+)`, 'm').exec(script)?.[1];
  assert.equal(arg('pretrain'), 'outputs/sft');
  assert.equal(arg('reward_pretrain'), 'outputs/reward');
  assert.equal(arg('rollout_batch_size'), '8');
  assert.equal(arg('num_episodes'), '32', '64 episodes over 2 prompts');
  assert.equal(arg('micro_rollout_batch_size'), '2', '8 prompts over 4 GPUs');
  assert.match(script, /^ {2}--apply_chat_template/m);
  assert.ok(bundle.unmapped.some((u) => u.field === 'ppo.vf_coef'));
  assert.match(fs.readFileSync(path.join(out, 'README.md'), 'utf8'), /`ppo\.vf_coef`/);
  assert.equal(fs.readFileSync(path.join(out, 'data/ppo-prompts.jsonl'), 'utf8').trim().split('\n').length, 2);
});

test("a peft section becomes PEFT's LoraConfig passed as peft_config in TRL, and OpenRLHF's LoRA arguments", async (t) => {
  const peft = { r: 16, lora_alpha: 32, target_modules: ['q_proj', 'v_proj'], use_rslora: true };
  const { dir, config } = workspace({
    sft: { data: 'sft.jsonl', peft },
    rm: { data: 'prefs.jsonl', peft: { r: 4, target_modules: 'all-linear' } },
    dpo: { data: 'prefs.jsonl', peft: { r: 8, lora_alpha: 16.5, target_modules: 'all-linear' } },
    ppo: { prompts: 'prompts.jsonl', peft: { ...peft, modules_to_save: ['lm_head'] } },
  });
  const { out: trl, bundle } = await exportTo('trl', { dir, config }, { gpus: 1 });
  const scripts = Object.fromEntries(
    ['sft', 'reward', 'dpo'].map((stage) => [stage, fs.readFileSync(path.join(trl, `${stage}.py`), 'utf8')]),
  );
  for (const [stage, source] of Object.entries(scripts)) {
    assert.deepEqual(undeclaredKwargs(source, 'LoraConfig'), [], stage);
    assert.match(source, /^from peft import LoraConfig$/m, stage);
    assert.match(source, /processing_class=tokenizer, peft_config=peft_config\)/, stage);
  }
  assert.match(
    scripts.sft,
    /r=16,\n {4}lora_alpha=32,\n {4}lora_dropout=0,\n {4}target_modules=\["q_proj", "v_proj"\],/,
  );
  assert.match(scripts.sft, /use_rslora=True,\n {4}task_type="CAUSAL_LM",/);
  assert.match(scripts.reward, /target_modules="all-linear",[^)]*task_type="SEQ_CLS",/);
  assert.match(scripts.dpo, /lora_alpha=16\.5,[^)]*task_type="CAUSAL_LM",/);
  const fields = bundle.unmapped.map((u) => u.field);
  assert.ok(!fields.some((f) => f.includes('peft')), fields.join());

  const openrlhf = await exportTo('openrlhf', { dir, config }, { gpus: 1 });
  const ray = openrlhf.out;
  const script = fs.readFileSync(path.join(ray, 'train_ppo.sh'), 'utf8');
  execFileSync('bash', ['-n', path.join(ray, 'train_ppo.sh')]);
  const names = scriptArgs(script);
  assert.deepEqual(undeclared(names, 'train_ppo_ray'), []);
  assert.match(script, /^ {2}--lora_rank 16 \\$/m);
  assert.match(script, /^ {2}--lora_alpha 32 \\$/m);
  assert.match(script, /^ {2}--lora_dropout 0 \\$/m);
  assert.match(script, /^ {2}--target_modules q_proj v_proj/m);
  assert.deepEqual(
    openrlhf.bundle.unmapped.map((u) => u.field).filter((f) => f.includes('peft')),
    ['ppo.peft.modules_to_save', 'ppo.peft.use_rslora'],
  );
  if (!hasPython) return t.skip('python3 is not installed: the scripts were not compiled');
  for (const stage of Object.keys(scripts))
    execFileSync('python3', ['-m', 'py_compile', path.join(trl, `${stage}.py`)]);
});

test('a preset model or a local folder is named in the README as something to set before launching', async (t) => {
  const { dir, config } = workspace({ model: 'tiny', rm: undefined, ppo: undefined });
  const { out } = await exportTo('trl', { dir, config }, { gpus: 1 });
  assert.match(
    fs.readFileSync(path.join(out, 'README.md'), 'utf8'),
    /## Before launching\n\n- model is the preset "tiny"/,
  );
  const sft = fs.readFileSync(path.join(out, 'sft.py'), 'utf8');
  assert.match(sft, /MODEL = None\n/);
  if (!hasPython) return t.skip('python3 is not installed');
  const run = (() => {
    try {
      execFileSync('python3', ['-c', sft.slice(sft.indexOf('MODEL = '), sft.indexOf('model = '))], { stdio: 'pipe' });
      return '';
    } catch (e) {
      return String((e as { stderr: Buffer }).stderr);
    }
  })();
  assert.match(run, /preset "tiny"/, 'the script stops with the reason before loading anything');
});

test('refusals: nothing to export, or a folder that holds files already', async () => {
  const { dir, config } = workspace({ sft: undefined, rm: undefined, grpo: undefined });
  await assert.rejects(
    () => exportExperiment({ target: 'trl', config, workspace: dir, layout: { gpus: 1, nodes: 1 } }),
    /no stage TRL trains \(sft, rm, dpo, grpo, rloo\)/,
  );
  const full = workspace();
  const out = path.join(full.dir, 'taken');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
  await assert.rejects(
    () =>
      exportExperiment({ target: 'trl', config: full.config, workspace: full.dir, layout: { gpus: 1, nodes: 1 }, out }),
    /the export folder exists and is not empty/,
  );
  assert.equal(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'mine');
});

test('rlhf export trl writes into .rlhf/exports and prints the launch commands', async () => {
  const { dir } = workspace();
  const { code, output } = await cli(dir, 'export', 'trl', 'animals.rlhf.json', '--gpus', '8').exit;
  assert.equal(code, 0, output);
  assert.match(output, /exported to .*\.rlhf\/exports\/.*-animals-trl\n {2}accelerate launch/);
  assert.match(output, /3 settings did not carry over; README\.md lists them/);
});

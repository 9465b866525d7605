/**
 * GRPO and RLOO in the TRL export: GRPOConfig/RLOOConfig names only, steps counted as TRL counts
 * them, the prompts with their columns, and the TypeScript reward functions called from Python
 * through the Node.js bridge with the results they give here.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { scratchFolder } from '../helpers/checkpoints';
import { exportTo, scriptArgs, undeclared, undeclaredKwargs } from '../helpers/exports';
import { hasPython } from '../helpers/python-scripts';
const { freshDir } = scratchFolder('export-group');

const REWARDS = `
const text = (c: string | { content: string }[]) => (typeof c === 'string' ? c : c[c.length - 1].content);

/** 1 where the completion states the row's answer. */
export function statesAnswer({ completions, answer }: { completions: string[]; answer: string[] }) {
  console.log('scoring', completions.length);
  return completions.map((c, i) => (text(c).includes(answer[i]) ? 1 : 0));
}

export const shorter = ({ completionIds }: { completionIds: number[][] }) => completionIds.map((ids) => ids.length);

export default function nothingForEmpty({ completions }: { completions: string[] }) {
  return completions.map((c) => (text(c) ? 0.5 : null));
}

export function broken(): number[] {
  throw new Error('no rule for this yet');
}
`;

const POLITE = `export const polite = ({ completions }: { completions: string[] }) => completions.map((c) => (c.includes('please') ? 1 : 0));
export const exact = ({ completions, answer }: { completions: string[]; answer: string[] }) =>
  completions.map((c, i) => (c.trim() === answer[i] ? 1 : null));
`;

function workspace(sections: Record<string, object> = {}): { dir: string; config: string } {
  const dir = freshDir();
  fs.mkdirSync(path.join(dir, 'rewards'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'rewards', 'animals.ts'), REWARDS);
  fs.writeFileSync(path.join(dir, 'rewards', 'polite.ts'), POLITE);
  fs.writeFileSync(
    path.join(dir, 'prompts.jsonl'),
    ['{"prompt":"What does a cat say?","answer":"meow"}', '{"prompt":"狗怎么叫？","answer":"汪"}', ''].join('\n'),
  );
  const section = {
    prompts: 'prompts.jsonl',
    reward_funcs: ['rewards/animals.ts', 'OpenAssistant/reward-model-deberta'],
  };
  const config = path.join(dir, 'animals.rlhf.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      name: 'animals',
      model: 'HuggingFaceTB/SmolLM2-135M-Instruct',
      grpo: {
        ...section,
        reward_weights: [1, 0.1, 0.5, 0, 2],
        num_generations: 4,
        num_iterations: 2,
        max_steps: 30,
        save_steps: 10,
        top_k: 0,
        loss_type: 'dr_grpo',
        scale_rewards: 'batch',
        epsilon_high: 0.28,
      },
      rloo: { ...section, num_generations: 2, top_k: 20, normalize_advantages: true, peft: { r: 8 } },
      ...sections,
    }),
  );
  return { dir, config };
}

test('GRPO and RLOO become grpo.py and rloo.py with TRL names, the reward functions in the order their weights count', async (t) => {
  const { dir, config } = workspace();
  const { out, bundle } = await exportTo('trl', { dir, config }, { gpus: 2 });
  assert.deepEqual(bundle.launch, [
    'accelerate launch --config_file accelerate_config.yaml grpo.py',
    'accelerate launch --config_file accelerate_config.yaml rloo.py',
  ]);
  const grpo = fs.readFileSync(path.join(out, 'grpo.py'), 'utf8');
  const rloo = fs.readFileSync(path.join(out, 'rloo.py'), 'utf8');
  assert.deepEqual(undeclaredKwargs(grpo, 'GRPOConfig'), []);
  assert.deepEqual(undeclaredKwargs(rloo, 'RLOOConfig'), []);
  assert.match(grpo, /max_steps=60,/, '30 rollouts of 2 optimizer updates each');
  assert.match(grpo, /save_steps=20,/);
  assert.match(grpo, /loss_type="dr_grpo",/);
  assert.match(grpo, /scale_rewards="batch",/);
  assert.match(grpo, /reward_weights=\[1, 0\.1, 0\.5, 0, 2\],/);
  assert.doesNotMatch(grpo, /top_k=/, 'top_k 0 samples from every token, TRL’s default');
  assert.match(rloo, /top_k=20,/);
  assert.match(rloo, /normalize_advantages=True,/);
  assert.match(rloo, /peft_config=peft_config/);
  // Declaration order, the default export under the file's name, then the reward model.
  const list = 'reward_funcs = [statesAnswer, shorter, animals, broken, "OpenAssistant/reward-model-deberta"]';
  assert.ok(grpo.includes(list), grpo);
  assert.match(grpo, /from reward_funcs import statesAnswer, shorter, animals, broken\n/);
  const prompts = fs.readFileSync(path.join(out, 'data/grpo-prompts.jsonl'), 'utf8').trim().split('\n');
  assert.deepEqual(JSON.parse(prompts[1]), { prompt: '狗怎么叫？', answer: '汪' });
  assert.match(fs.readFileSync(path.join(out, 'README.md'), 'utf8'), /needs Node\.js 18 or newer/);

  if (!hasPython) return t.skip('python3 is not installed: the scripts were not compiled or called');
  for (const file of ['grpo.py', 'rloo.py', 'reward_funcs.py'])
    execFileSync('python3', ['-m', 'py_compile', path.join(out, file)]);
  // TRL's call: the batch's lists as keyword arguments, dataset columns included.
  const call = `
import json, reward_funcs as r
kw = dict(prompts=["What does a cat say?", "狗怎么叫？"], completions=[" A cat says meow.", ""], completion_ids=[[1, 2, 3], []], answer=["meow", "汪"])
print(json.dumps([r.statesAnswer(**kw), r.shorter(**kw), r.animals(**kw)]))
try:
    r.broken(**kw)
except RuntimeError as e:
    print(json.dumps(str(e).splitlines()[0]))
`;
  const lines = execFileSync('python3', ['-c', call], { cwd: out, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    .trim()
    .split('\n');
  assert.deepEqual(JSON.parse(lines[0]), [
    [1, 0],
    [3, 0],
    [0.5, null],
  ]);
  assert.match(JSON.parse(lines[1]), /reward function broken: Error: no rule for this yet/);
});

test('OpenRLHF: GRPO and RLOO jobs with group_norm and rloo estimators, the functions weighted in reward_func.py', async (t) => {
  const { dir, config } = workspace({
    grpo: {
      prompts: 'prompts.jsonl',
      reward_funcs: ['rewards/polite.ts'],
      reward_weights: [2, 0.5],
      num_generations: 4,
      per_device_train_batch_size: 16,
      max_steps: 5,
      beta: 0.04,
      top_k: 10,
    },
    rloo: { prompts: 'prompts.jsonl', reward_funcs: ['Skywork/Skywork-Reward-V2-Qwen3-0.6B'], num_generations: 2 },
  });
  const { out, bundle } = await exportTo('openrlhf', { dir, config }, { gpus: 2 });
  assert.deepEqual(bundle.launch, ['bash train_grpo.sh', 'bash train_rloo.sh']);
  const args = (file: string) => {
    const script = fs.readFileSync(path.join(out, file), 'utf8');
    execFileSync('bash', ['-n', path.join(out, file)]);
    assert.deepEqual(undeclared(scriptArgs(script), 'train_ppo_ray'), [], file);
    // "  --name value \\" lines; a flag alone stands for true.
    const values = new Map(
      [...script.matchAll(/^ {2}--(\w+)(?: ([^\s\\]\S*))?/gm)].map((m) => [m[1], m[2] ?? true] as const),
    );
    return (name: string) => values.get(name);
  };
  const grpo = args('train_grpo.sh');
  assert.equal(grpo('advantage_estimator'), 'group_norm');
  assert.equal(grpo('n_samples_per_prompt'), '4');
  assert.equal(grpo('rollout_batch_size'), '4', '16 completions a rollout, 4 per prompt');
  assert.equal(grpo('train_batch_size'), '16');
  assert.equal(grpo('num_episodes'), '10', '5 rollouts of 4 prompts over 2 prompts');
  assert.equal(grpo('use_kl_loss'), true);
  assert.equal(grpo('kl_estimator'), 'k3');
  assert.equal(grpo('remote_rm_url'), 'reward_func.py');
  assert.equal(grpo('label_key'), 'answer');
  assert.equal(grpo('reward_pretrain'), undefined);
  const rloo = args('train_rloo.sh');
  assert.equal(rloo('advantage_estimator'), 'rloo');
  assert.equal(rloo('reward_pretrain'), 'Skywork/Skywork-Reward-V2-Qwen3-0.6B');
  assert.equal(rloo('use_kl_loss'), undefined, "RLOO's KL is in the reward");
  assert.ok(bundle.unmapped.some((u) => u.field === 'grpo.top_k'));

  if (!hasPython) return t.skip('python3 is not installed: reward_func.py was not called');
  try {
    execFileSync('python3', ['-c', 'import torch'], { stdio: 'ignore' });
  } catch {
    return t.skip('PyTorch is not installed: reward_func.py was not called');
  }
  const call = `
import json, reward_func
out = reward_func.reward_func(["Q: cat? meow please", "Q: dog? woof"], ["Q: cat?", "Q: dog?"], ["meow please", "bark"])
print(json.dumps({"rewards": out["rewards"].tolist(), "logs": {k: v.item() for k, v in out["extra_logs"].items()}}))
`;
  const reply = JSON.parse(execFileSync('python3', ['-c', call], { cwd: out, encoding: 'utf8' }));
  // polite (weight 2): [1, 0]; exact (weight 0.5): [1, null].
  assert.deepEqual(reply.rewards, [2.5, 0]);
  assert.deepEqual(reply.logs, { 'rewards/polite/mean': 0.5, 'rewards/exact/mean': 1 });
});

/**
 * LoRA in DPO, GRPO and RLOO: the policy trains an adapter on a frozen base, and the reference is
 * that base with the adapter off, held once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { Experiment, parseExperiment } from '../../src/experiment/config';
import { saveCheckpoint } from '../../src/model/checkpoint';
import { presetConfig, resizeConfig } from '../../src/model/config';
import { initParams } from '../../src/model/decoder';
import { readSafetensors } from '../../src/model/safetensors';
import { RunEvent } from '../../src/protocol/runner';
import { runDpo } from '../../src/train/dpo';
import { REFERENCE_LOGPS_FILE } from '../../src/train/dpo-reference';
import { GREEDY } from '../../src/train/generate';
import { runGroupRl } from '../../src/train/group-rl';
import { loadModel } from '../../src/train/model-state';
import { policyModels } from '../../src/train/policy-models';
import { sampleFromCheckpoint } from '../../src/train/samples';
import { runSft } from '../../src/train/sft';
import { Rng } from '../../src/util/rng';
import { MARKER_ANIMALS, markerPairs } from '../helpers/marker-pairs';
import { tempDir } from '../helpers/temp';

const dir = tempDir('lora-rl');

/** A small GPT-2 saved as a model folder: the base the adapters train on. */
const base = path.join(dir, 'base');
const baseConfig = resizeConfig(presetConfig('tiny'), { nLayer: 1, nEmbd: 32, nHead: 2, nPositions: 32 });
saveCheckpoint(base, { config: baseConfig, params: initParams(baseConfig, new Rng(3)) });
const baseBytes = fs.readFileSync(path.join(base, 'model.safetensors'));

const PEFT = { r: 4, lora_alpha: 16, target_modules: 'all-linear' };

function dpoExperiment(dpo: Record<string, unknown>): Experiment {
  return parseExperiment(
    {
      seed: 1,
      model: base,
      runtime: { provider: 'cpu', threads: 1 },
      dpo: {
        data: path.join(dir, 'unused.jsonl'),
        per_device_train_batch_size: 8,
        learning_rate: 5e-2,
        warmup_steps: 2,
        logging_steps: 1,
        eval_steps: 1000,
        save_steps: 1000,
        eval_fraction: 0.25,
        peft: PEFT,
        ...dpo,
      },
    },
    'test',
  );
}

const rows = (run: string) =>
  fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
const training = (run: string) => rows(run).filter((r) => 'loss' in r);
const adapterConfig = (folder: string) => JSON.parse(fs.readFileSync(path.join(folder, 'adapter_config.json'), 'utf8'));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('DPO with LoRA: learns the preference rule on a frozen base, starts at its reference, and saves an adapter Generate reads', async () => {
  const run = path.join(dir, 'dpo');
  const { modelDir } = await runDpo({
    // A random base's logits are small, so its implicit rewards are too: a larger beta shows the loss fall.
    experiment: dpoExperiment({ max_steps: 30, beta: 1 }),
    outputDir: run,
    pairs: markerPairs(96, 5),
    emit: () => {},
  });
  const curve = training(run);
  // A fresh adapter has B = 0: the policy is the reference at the first step, so its implicit rewards are 0.
  for (const key of ['rewards/chosen', 'rewards/rejected'])
    assert.ok(Math.abs(curve[0][key]) < 1e-6, `${key} at the first step: ${curve[0][key]}`);
  assert.ok(Math.abs(curve[0].loss - Math.log(2)) < 1e-5, `the first loss is log 2: ${curve[0].loss}`);
  const early = mean(curve.slice(0, 4).map((r) => r.loss)),
    late = mean(curve.slice(-4).map((r) => r.loss));
  assert.ok(late < early - 0.1, `loss ${early} → ${late}`);
  const accuracies = curve.map((r) => r['rewards/accuracies']);
  assert.ok(mean(accuracies.slice(-8)) > 0.8 && mean(accuracies.slice(0, 2)) < 0.5, `accuracies ${accuracies}`);

  assert.deepEqual(fs.readdirSync(modelDir).sort(), [
    'adapter_config.json',
    'adapter_model.safetensors',
    'optimizer.safetensors',
    'trainer_state.json',
  ]);
  const config = adapterConfig(modelDir);
  assert.deepEqual([config.task_type, config.base_model_name_or_path, config.r], ['CAUSAL_LM', base, 4]);
  const names = [...readSafetensors(path.join(modelDir, 'adapter_model.safetensors')).tensors.keys()];
  assert.ok(
    names.every((n) => /lora_[AB]\.weight$/.test(n)),
    names.join(),
  );
  assert.ok(fs.readFileSync(path.join(base, 'model.safetensors')).equals(baseBytes), 'the base folder is untouched');
  const loaded = loadModel(modelDir, 0);
  const original = loadModel(base, 0);
  for (const [name, t] of original.params) assert.deepEqual(loaded.params.get(name)!.data, t.data, name);
  const [answer] = await sampleFromCheckpoint(modelDir, ['Tell me about the cat.'], new Rng(0), {
    ...GREEDY,
    maxNewTokens: 4,
  });
  assert.equal(answer.prompt, 'Tell me about the cat.');
});

test('the base is held once: the reference\'s slot holds it, the policy\'s only its adapter, read at "ref."', () => {
  const experiment = dpoExperiment({});
  const run = { experiment, outputDir: path.join(dir, 'layout') };
  const { models, places } = policyModels(loadModel(base, 0), run, experiment.dpo!, {
    where: 'dpo.peft',
    reference: true,
  });
  const [ref, policy] = models;
  assert.deepEqual([ref.name, ref.trainable, policy.name, policy.trainable], ['ref', false, '', true]);
  assert.ok(ref.params.has('h.0.attn.c_attn.weight') && ref.adapter === undefined);
  assert.equal(policy.params.size, 0, 'no copy of the base in the policy slot');
  assert.ok(policy.adapter!.weights.has('h.0.attn.c_attn.lora_A.weight'));
  assert.equal(places.policy?.basePrefix, 'ref.');
  const full = policyModels(loadModel(base, 0), run, {}, { where: 'dpo.peft', reference: true });
  assert.equal(full.models[1].params.size, ref.params.size, 'in full, the policy has its own weights');
});

test('DPO with LoRA on an SFT adapter: the adapter continues, the SFT model is the reference, and a resumed run recomputes it alike', async () => {
  const sftData = path.join(dir, 'sft.jsonl');
  fs.writeFileSync(
    sftData,
    MARKER_ANIMALS.map((a) =>
      JSON.stringify({ prompt: `Tell me about the ${a}.`, completion: ' red banana tree' }),
    ).join('\n'),
  );
  const sft = await runSft({
    experiment: parseExperiment(
      {
        seed: 1,
        model: base,
        runtime: { provider: 'cpu', threads: 1 },
        sft: { data: sftData, max_steps: 4, learning_rate: 3e-2, eval_fraction: 0, save_steps: 1000, peft: PEFT },
      },
      'test',
    ),
    outputDir: path.join(dir, 'sft'),
    emit: () => {},
  });
  const pairs = markerPairs(16, 8);
  const settings = { model: sft.modelDir, max_steps: 4, save_steps: 2, eval_fraction: 0 };
  const whole = path.join(dir, 'dpo-on-sft');
  const { modelDir } = await runDpo({ experiment: dpoExperiment(settings), outputDir: whole, pairs, emit: () => {} });
  const first = training(whole)[0];
  assert.ok(Math.abs(first['rewards/chosen']) < 1e-6, `the policy starts as the SFT model: ${first['rewards/chosen']}`);
  assert.equal(adapterConfig(modelDir).base_model_name_or_path, base, 'the SFT adapter continues on its base');
  const start = loadModel(sft.modelDir, 0).adapter!.weights.get('h.0.attn.c_attn.lora_B.weight')!.data;
  assert.notDeepEqual(loadModel(modelDir, 0).adapter!.weights.get('h.0.attn.c_attn.lora_B.weight')!.data, start);

  // Resumed without its cached reference log-probs, the run computes them again from the SFT model
  // it holds (base and SFT adapter), not from the trained adapter, and ends where the whole run ends.
  const cut = path.join(dir, 'dpo-cut');
  const stop = new AbortController();
  await runDpo({
    experiment: dpoExperiment(settings),
    outputDir: cut,
    pairs,
    signal: stop.signal,
    emit: (e: RunEvent) => e.type === 'checkpoint' && stop.abort(),
  });
  fs.rmSync(path.join(cut, REFERENCE_LOGPS_FILE));
  await runDpo({
    experiment: dpoExperiment(settings),
    outputDir: cut,
    pairs,
    resumeFrom: path.join(cut, 'checkpoint-2'),
    emit: () => {},
  });
  const last = (run: string) => training(run).pop()!;
  assert.equal(last(cut).step, 4);
  assert.ok(Math.abs(last(cut).loss - last(whole).loss) < 1e-5, `${last(cut).loss} vs ${last(whole).loss}`);
});

test('DPO with LoRA on a Llama preset: q_proj and v_proj adapters on its drawn weights, saved once as the base', async () => {
  const llama = (peft: Record<string, unknown>) => {
    const exp = dpoExperiment({ max_steps: 2, eval_fraction: 0, peft: { ...PEFT, ...peft } });
    return { ...exp, model: 'tiny-llama', model_size: { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 } };
  };
  const run = path.join(dir, 'dpo-llama');
  const pairs = markerPairs(16, 2);
  const experiment = llama({ target_modules: ['q_proj', 'v_proj'] });
  const { modelDir } = await runDpo({ experiment, outputDir: run, pairs, emit: () => {} });
  const config = adapterConfig(modelDir);
  assert.deepEqual(
    [config.base_model_name_or_path, config.target_modules],
    [path.join(run, 'base'), ['q_proj', 'v_proj']],
  );
  const names = [...readSafetensors(path.join(modelDir, 'adapter_model.safetensors')).tensors.keys()].sort();
  assert.deepEqual(names, [
    'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
    'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
    'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight',
    'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight',
  ]);
  const [answer] = await sampleFromCheckpoint(modelDir, ['Tell me about the owl.'], new Rng(0), {
    ...GREEDY,
    maxNewTokens: 3,
  });
  assert.equal(answer.prompt, 'Tell me about the owl.');
  await assert.rejects(
    runDpo({
      experiment: llama({ target_modules: ['c_attn'] }),
      outputDir: path.join(dir, 'bad'),
      pairs,
      emit: () => {},
    }),
    /dpo\.peft: target_modules \["c_attn"\] match no module of the model; its projections are q_proj, k_proj, v_proj, o_proj/,
  );
});

function groupExperiment(stage: 'grpo' | 'rloo', overrides: Record<string, unknown> = {}): Experiment {
  const prompts = path.join(dir, 'prompts.jsonl');
  fs.writeFileSync(prompts, MARKER_ANIMALS.map((a) => JSON.stringify({ prompt: `What does a ${a} eat?` })).join('\n'));
  // A reward that differs within every group of a random policy's completions, so updates move it.
  const reward = path.join(dir, 'length.ts');
  fs.writeFileSync(
    reward,
    [
      'export function longer({ completions }: { completions: string[] }): number[] {',
      '  return completions.map((c) => c.length / 10);',
      '}',
    ].join('\n'),
  );
  return parseExperiment(
    {
      seed: 1,
      model: base,
      runtime: { provider: 'cpu', threads: 1 },
      [stage]: {
        prompts,
        reward_funcs: [reward],
        max_steps: 3,
        per_device_train_batch_size: 8,
        num_generations: 4,
        learning_rate: 1e-2,
        max_completion_length: 6,
        save_steps: 2,
        sample_steps: 1000,
        peft: PEFT,
        ...overrides,
      },
    },
    'test',
  );
}

const metricsOf = (events: RunEvent[]) => events.flatMap((e) => (e.type === 'metrics' ? [e.values] : []));

test('GRPO with LoRA and beta > 0: the reference is the base with the adapter off, so kl starts at 0; the run saves an adapter', async () => {
  const events: RunEvent[] = [];
  const run = path.join(dir, 'grpo');
  const { modelDir } = await runGroupRl({
    stage: 'grpo',
    experiment: groupExperiment('grpo', { beta: 0.04 }),
    outputDir: run,
    emit: (e) => events.push(e),
  });
  const metrics = metricsOf(events);
  assert.equal(metrics.length, 3);
  assert.ok(Math.abs(metrics[0].kl) < 1e-6, `kl at the first rollout: ${metrics[0].kl}`);
  assert.ok(
    metrics.every((m) => Number.isFinite(m.loss) && m.kl >= 0) && metrics[2].kl > 0,
    `the adapter moves the policy from its reference: ${JSON.stringify(metrics)}`,
  );
  assert.equal(adapterConfig(modelDir).base_model_name_or_path, base);
  assert.equal(adapterConfig(path.join(run, 'checkpoint-2')).task_type, 'CAUSAL_LM');
  assert.ok(fs.readFileSync(path.join(base, 'model.safetensors')).equals(baseBytes), 'the base folder is untouched');

  // Resumed from its checkpoint, the last rollout is the uninterrupted run's.
  const again: RunEvent[] = [];
  await runGroupRl({
    stage: 'grpo',
    experiment: groupExperiment('grpo', { beta: 0.04 }),
    outputDir: path.join(dir, 'grpo-resumed'),
    resumeFrom: path.join(run, 'checkpoint-2'),
    emit: (e) => again.push(e),
  });
  const last = metricsOf(again).at(-1)!;
  for (const key of ['reward', 'kl', 'loss'])
    assert.ok(Math.abs(last[key] - metrics[2][key]) <= 1e-4 * Math.max(1, Math.abs(metrics[2][key])), key);
});

test('GRPO with LoRA and beta 0 holds no reference; RLOO with LoRA puts its KL, 0 at first, in the reward', async () => {
  const grpo = await runGroupRl({
    stage: 'grpo',
    experiment: groupExperiment('grpo', { max_steps: 1 }),
    outputDir: path.join(dir, 'grpo-beta0'),
    emit: () => {},
  });
  assert.ok(loadModel(grpo.modelDir, 0).adapter);

  const events: RunEvent[] = [];
  const rloo = await runGroupRl({
    stage: 'rloo',
    experiment: groupExperiment('rloo', { max_steps: 2 }),
    outputDir: path.join(dir, 'rloo'),
    emit: (e) => events.push(e),
  });
  const metrics = metricsOf(events);
  assert.ok(Math.abs(metrics[0].kl) < 1e-6, `kl at the first rollout: ${metrics[0].kl}`);
  assert.ok(Number.isFinite(metrics[1].loss));
  assert.equal(adapterConfig(rloo.modelDir).task_type, 'CAUSAL_LM');
});

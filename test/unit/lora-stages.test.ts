import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { program } from '../../src/cli';
import { Experiment, parseExperiment } from '../../src/experiment/config';
import { saveCheckpoint } from '../../src/model/checkpoint';
import { presetConfig, resizeConfig } from '../../src/model/config';
import { initParams } from '../../src/model/decoder';
import { readSafetensors } from '../../src/model/safetensors';
import { gpt2Tokenizer } from '../../src/model/tokenizer';
import { RunEvent } from '../../src/protocol/runner';
import { mergedModel } from '../../src/train/adapters';
import { mergeAdapterFolder } from '../../src/train/merge';
import { loadModel } from '../../src/train/model-state';
import { sampleFromCheckpoint } from '../../src/train/samples';
import { Scorer } from '../../src/train/scorer';
import { runPpo } from '../../src/train/ppo';
import { runRm } from '../../src/train/reward';
import { runSft } from '../../src/train/sft';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../helpers/temp';

const dir = tempDir('lora-stages');
const data = path.join(dir, 'sft.jsonl');
const animals = [
  ['cat', 'fish'],
  ['dog', 'meat'],
  ['cow', 'grass'],
  ['bird', 'seeds'],
];
fs.writeFileSync(
  data,
  animals
    .map(([en, food]) => JSON.stringify({ prompt: `What does a ${en} eat?`, completion: ` A ${en} eats ${food}.` }))
    .join('\n'),
);

/** A small GPT-2 saved as a model folder: the base the adapters train on. */
const base = path.join(dir, 'base');
const baseConfig = resizeConfig(presetConfig('tiny'), { nLayer: 1, nEmbd: 32, nHead: 2, nPositions: 32 });
saveCheckpoint(base, { config: baseConfig, params: initParams(baseConfig, new Rng(3)) });
const baseBytes = fs.readFileSync(path.join(base, 'model.safetensors'));

const PEFT = { r: 4, lora_alpha: 8, target_modules: ['c_attn', 'c_fc'] };

function experiment(section: Record<string, unknown>, model = base): Experiment {
  return parseExperiment(
    {
      seed: 3,
      model,
      runtime: { provider: 'cpu', threads: 1 },
      sft: {
        data,
        max_steps: 12,
        per_device_train_batch_size: 4,
        learning_rate: 3e-2,
        warmup_steps: 2,
        logging_steps: 1,
        eval_fraction: 0,
        save_steps: 4,
        peft: PEFT,
        ...section,
      },
    },
    'test',
  );
}

const losses = (run: string) =>
  fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => 'loss' in r)
    .map((r) => r.loss as number);

test('SFT with LoRA: the loss falls, a PEFT adapter folder is saved, the base stays as it was', async () => {
  const run = path.join(dir, 'sft');
  const { modelDir } = await runSft({ experiment: experiment({}), outputDir: run, emit: () => {} });
  const curve = losses(run);
  // A random base's logits are small (tied embeddings at N(0, 0.02²)), which bounds how far adapters
  // on its projections move them: the loss falls steadily, not far.
  assert.ok(curve[11] < curve[0] - 0.3 && curve[11] < curve[5], `loss ${curve.join(' → ')}`);
  assert.deepEqual(fs.readdirSync(modelDir).sort(), [
    'adapter_config.json',
    'adapter_model.safetensors',
    'optimizer.safetensors',
    'trainer_state.json',
  ]);
  const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'adapter_config.json'), 'utf8'));
  assert.equal(config.peft_type, 'LORA');
  assert.equal(config.task_type, 'CAUSAL_LM');
  assert.equal(config.base_model_name_or_path, base);
  assert.deepEqual([config.r, config.lora_alpha, config.fan_in_fan_out, config.bias], [4, 8, true, 'none']);
  assert.deepEqual(config.target_modules, ['c_attn', 'c_fc']);
  const names = [...readSafetensors(path.join(modelDir, 'adapter_model.safetensors')).tensors.keys()].sort();
  assert.deepEqual(names, [
    'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight',
    'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight',
    'base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight',
    'base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight',
  ]);
  assert.ok(fs.readFileSync(path.join(base, 'model.safetensors')).equals(baseBytes), 'the base folder is untouched');

  // The adapter loads as base + adapter: the base's weights bit-identical, the adapter trained.
  const loaded = loadModel(modelDir, 0);
  const original = loadModel(base, 0);
  for (const [name, t] of original.params) assert.deepEqual(loaded.params.get(name)!.data, t.data, name);
  const b = loaded.adapter!.weights.get('h.0.attn.c_attn.lora_B.weight')!.data as Float32Array;
  assert.ok(
    b.some((v) => v !== 0),
    'lora_B trained',
  );
  const merged = mergedModel(loaded).params;
  assert.notDeepEqual(merged.get('h.0.attn.c_attn.weight')!.data, original.params.get('h.0.attn.c_attn.weight')!.data);
  assert.deepEqual(merged.get('h.0.attn.c_proj.weight')!.data, original.params.get('h.0.attn.c_proj.weight')!.data);

  // Generation reads an adapter folder as the model it makes.
  const rows = await sampleFromCheckpoint(modelDir, ['What does a cat eat?'], new Rng(1), {
    maxNewTokens: 4,
    temperature: 0,
    topK: 0,
    topP: 1,
  });
  assert.equal(rows.length, 1);
});

test('SFT with LoRA: checkpoints hold only the adapter and its moments; a stopped run resumes to the same curve', async () => {
  const straight = path.join(dir, 'straight');
  await runSft({ experiment: experiment({}), outputDir: straight, emit: () => {} });
  const checkpoint = path.join(straight, 'checkpoint-4');
  const moments = [...readSafetensors(path.join(checkpoint, 'optimizer.safetensors')).tensors.keys()];
  assert.equal(moments.length, 8);
  assert.ok(
    moments.every((n) => /lora_[AB]\.weight$/.test(n)),
    moments.join(),
  );

  const resumed = path.join(dir, 'resumed');
  const stop = new AbortController();
  const first = await runSft({
    experiment: experiment({}),
    outputDir: resumed,
    signal: stop.signal,
    emit: (e: RunEvent) => e.type === 'progress' && e.step === 6 && stop.abort(),
  });
  assert.equal(first.stopped, true);
  await runSft({ experiment: experiment({}), outputDir: resumed, resumeFrom: first.modelDir, emit: () => {} });
  const curve = losses(straight),
    again = losses(resumed);
  assert.equal(again.length, curve.length);
  again.forEach((loss, i) =>
    assert.ok(Math.abs(loss - curve[i]) <= 1e-5 * Math.abs(curve[i]), `${i}: ${loss} vs ${curve[i]}`),
  );
});

test('SFT with LoRA on a preset: its drawn weights are saved once as the base the adapter names', async () => {
  const run = path.join(dir, 'preset');
  const exp = experiment({ max_steps: 2 }, 'tiny');
  exp.model_size = { n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32 };
  const { modelDir } = await runSft({ experiment: exp, outputDir: run, emit: () => {} });
  const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'adapter_config.json'), 'utf8'));
  assert.equal(config.base_model_name_or_path, path.join(run, 'base'));
  assert.ok(loadModel(modelDir, 0).adapter);
});

test('SFT with LoRA: bad settings name the field', async () => {
  const out = path.join(dir, 'bad');
  await assert.rejects(
    runSft({ experiment: experiment({ peft: { target_modules: ['q_proj'] } }), outputDir: out, emit: () => {} }),
    /sft\.peft: target_modules \["q_proj"\] match no module of the model; its projections are c_attn, c_proj, c_fc/,
  );
  assert.throws(() => experiment({ peft: { r: 0 } }), /test: sft\.peft\.r: /);
  assert.throws(() => experiment({ peft: { lora_dropout: 0.1 } }), /sft\.peft\.lora_dropout: only 0 is supported/);
});

test('reward model with LoRA on the SFT adapter: a SEQ_CLS adapter with the score head, which scores', async () => {
  const sft = path.join(dir, 'sft', 'model');
  const pairs = animals.flatMap(([en, food]) =>
    Array.from({ length: 4 }, () => ({ prompt: `What does a ${en} eat?`, chosen: ` ${food}.`, rejected: ' rocks.' })),
  );
  const exp = parseExperiment(
    {
      seed: 1,
      model: base,
      runtime: { provider: 'cpu', threads: 1 },
      rm: {
        data: path.join(dir, 'unused.jsonl'),
        model: sft,
        max_steps: 6,
        per_device_train_batch_size: 8,
        learning_rate: 1e-2,
        eval_fraction: 0,
        peft: { r: 4, target_modules: 'all-linear' },
      },
    },
    'test',
  );
  const run = path.join(dir, 'rm');
  const { modelDir } = await runRm({ experiment: exp, outputDir: run, pairs, emit: () => {} });
  const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'adapter_config.json'), 'utf8'));
  assert.equal(config.task_type, 'SEQ_CLS');
  assert.equal(config.base_model_name_or_path, base, 'the SFT adapter continues on its own base');
  const names = [...readSafetensors(path.join(modelDir, 'adapter_model.safetensors')).tensors.keys()];
  assert.ok(names.includes('base_model.model.score.weight'), names.join());
  const scorer = await Scorer.load(modelDir, { provider: 'cpu', threads: 1 });
  assert.ok(scorer.normalization, 'the normalisation is read from the adapter checkpoint');
  const scores = await scorer.scoreTexts([{ prompt: 'What does a cat eat?', response: ' fish.' }]);
  assert.ok(Number.isFinite(scores[0]));
  await scorer.release();
});

const fish = gpt2Tokenizer().encode(' fish')[0];
const fishReward = async (_: number[][], responses: number[][]) => responses.map((r) => (r.includes(fish) ? 1 : 0));

function ppoExperiment(sftModel: string, overrides: Record<string, unknown> = {}): Experiment {
  const prompts = path.join(dir, 'prompts.jsonl');
  fs.writeFileSync(prompts, animals.map(([en]) => JSON.stringify({ prompt: `What does a ${en} eat?` })).join('\n'));
  return parseExperiment(
    {
      seed: 1,
      model: base,
      runtime: { provider: 'cpu', threads: 1 },
      ppo: {
        prompts,
        sft_model: sftModel,
        total_episodes: 24,
        per_device_train_batch_size: 8,
        num_mini_batches: 2,
        num_ppo_epochs: 2,
        learning_rate: 1e-2,
        response_length: 6,
        temperature: 1,
        save_steps: 2,
        peft: { r: 4, target_modules: 'all-linear' },
        ...overrides,
      },
    },
    'test',
  );
}

test('PPO with LoRA on the SFT adapter: the reference is the SFT model, the run saves policy and value adapters', async () => {
  const run = path.join(dir, 'ppo');
  const events: RunEvent[] = [];
  const sft = path.join(dir, 'sft', 'model');
  await runPpo({ experiment: ppoExperiment(sft), outputDir: run, reward: fishReward, emit: (e) => events.push(e) });
  const metrics = events.flatMap((e) => (e.type === 'metrics' ? [e.values] : []));
  assert.equal(metrics.length, 3);
  assert.ok(
    Math.abs(metrics[0]['objective/kl']) < 1e-4,
    `the policy starts as the reference: ${metrics[0]['objective/kl']}`,
  );
  assert.ok(metrics.every((m) => Number.isFinite(m['loss/policy_avg']) && Number.isFinite(m['loss/value_avg'])));
  const adapterConfig = (folder: string) =>
    JSON.parse(fs.readFileSync(path.join(run, folder, 'adapter_config.json'), 'utf8'));
  assert.deepEqual(
    [adapterConfig('model').task_type, adapterConfig('model').base_model_name_or_path],
    ['CAUSAL_LM', base],
  );
  assert.equal(adapterConfig('value').task_type, 'SEQ_CLS');
  assert.equal(adapterConfig('checkpoint-2/policy').task_type, 'CAUSAL_LM');
  // The policy adapter continued the SFT adapter: it loads on the base and has moved from it.
  const policy = loadModel(path.join(run, 'model'), 0).adapter!.weights;
  const start = loadModel(sft, 0).adapter!.weights;
  assert.notDeepEqual(
    policy.get('h.0.attn.c_attn.lora_B.weight')!.data,
    start.get('h.0.attn.c_attn.lora_B.weight')!.data,
  );

  // Resumed from its checkpoint, the run goes on to the same metrics.
  const resumed = path.join(dir, 'ppo-resumed');
  const again: RunEvent[] = [];
  await runPpo({
    experiment: ppoExperiment(sft),
    outputDir: resumed,
    resumeFrom: path.join(run, 'checkpoint-2'),
    reward: fishReward,
    emit: (e) => again.push(e),
  });
  const last = again.flatMap((e) => (e.type === 'metrics' ? [e.values] : [])).at(-1)!;
  for (const key of ['objective/kl', 'loss/policy_avg', 'loss/value_avg'])
    assert.ok(Math.abs(last[key] - metrics[2][key]) <= 1e-4 * Math.max(1, Math.abs(metrics[2][key])), key);
});

test('PPO with LoRA on a full SFT model: the reference is the base with the adapters off', async () => {
  const run = path.join(dir, 'ppo-full-base');
  const events: RunEvent[] = [];
  await runPpo({ experiment: ppoExperiment(base), outputDir: run, reward: fishReward, emit: (e) => events.push(e) });
  const first = events.find((e) => e.type === 'metrics');
  assert.ok(first?.type === 'metrics' && Math.abs(first.values['objective/kl']) < 1e-4);
  assert.ok(loadModel(path.join(run, 'model'), 0).adapter);
  assert.ok(loadModel(path.join(run, 'value'), 0).adapter);
});

test('rlhf merge writes the adapter folded into its base as a full model folder', async () => {
  const adapter = path.join(dir, 'sft', 'model');
  const out = path.join(dir, 'merged');
  await program().parseAsync(['node', 'rlhf', 'merge', adapter, '--out', out]);
  assert.ok(fs.existsSync(path.join(out, 'config.json')) && fs.existsSync(path.join(out, 'model.safetensors')));
  const merged = loadModel(out, 0);
  const expected = mergedModel(loadModel(adapter, 0)).params;
  for (const [name, t] of expected) assert.deepEqual(merged.params.get(name)!.data, t.data, name);
  assert.equal(merged.adapter, undefined);

  assert.throws(
    () => mergeAdapterFolder(base, path.join(dir, 'not-merged')),
    /base: not a PEFT adapter folder \(it has no adapter_config\.json\)/,
  );
});

test('an adapter whose base does not match names the base it needs', () => {
  const other = path.join(dir, 'other-base');
  const cfg = resizeConfig(presetConfig('tiny'), { nLayer: 1, nEmbd: 64, nHead: 2, nPositions: 32 });
  saveCheckpoint(other, { config: cfg, params: initParams(cfg, new Rng(1)) });
  const moved = path.join(dir, 'moved-adapter');
  fs.cpSync(path.join(dir, 'sft', 'model'), moved, { recursive: true });
  const file = path.join(moved, 'adapter_config.json');
  fs.writeFileSync(
    file,
    JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), base_model_name_or_path: other }),
  );
  assert.throws(
    () => loadModel(moved, 0),
    /tensor "base_model\.model\.transformer\.h\.0\.attn\.c_attn\.lora_A\.weight" has shape \[4,32\], but the base .*other-base needs \[4,64\]: the adapter was made for another base model/,
  );
});

test('PPO with LoRA: a value model from a full reward model keeps its own frozen base; a resumed policy must fit the base', async () => {
  const rm = path.join(dir, 'full-rm');
  saveCheckpoint(rm, { config: baseConfig, params: initParams(baseConfig, new Rng(9), 'score') });
  const run = path.join(dir, 'ppo-own-value-base');
  await runPpo({
    experiment: ppoExperiment(base, { reward_model: rm, total_episodes: 8 }),
    outputDir: run,
    reward: fishReward,
    emit: () => {},
  });
  const value = JSON.parse(fs.readFileSync(path.join(run, 'value', 'adapter_config.json'), 'utf8'));
  assert.deepEqual([value.task_type, value.base_model_name_or_path], ['SEQ_CLS', rm]);

  const copy = path.join(dir, 'base-copy');
  fs.cpSync(base, copy, { recursive: true });
  await assert.rejects(
    runPpo({
      experiment: ppoExperiment(copy),
      outputDir: path.join(dir, 'ppo-other-base'),
      resumeFrom: path.join(dir, 'ppo', 'checkpoint-2'),
      reward: fishReward,
      emit: () => {},
    }),
    new RegExp(`the policy adapter was made for the base ${base}, but the SFT model ${copy} has the base ${copy}`),
  );
});

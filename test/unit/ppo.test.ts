import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { gradCheck } from '../../src/engine/gradcheck';
import { loadCheckpoint } from '../../src/model/checkpoint';
import { gpt2Tokenizer } from '../../src/model/tokenizer';
import { RunEvent } from '../../src/protocol/runner';
import { adaptKlCoef, gae, klEstimate, tokenRewards, whiten } from '../../src/train/advantages';
import { parseExperiment } from '../../src/experiment/config';
import { TINY_BASE, trainAnimalPolicy } from '../helpers/animal-policy';
import { runPpo } from '../../src/train/ppo';
import { readPrompts } from '../../src/train/prompts';
import { policyLoss, valueLoss } from '../../src/train/ppo-losses';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../helpers/temp';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i] - b[i]) <= tol * Math.max(1, Math.abs(b[i])), `[${i}] ${a[i]} vs ${b[i]}`);
};

test('GAE matches the definition summed term by term', () => {
  const rewards = Float32Array.from([0.1, -0.2, 0.05, 1.5]),
    values = Float32Array.from([0.3, 0.2, -0.1, 0.4]);
  const gamma = 0.9,
    lam = 0.8;
  // A_t = Σ_k (γλ)^k δ_{t+k}, δ_t = r_t + γ V_{t+1} - V_t, V after the end = 0.
  const delta = (t: number) => rewards[t] + gamma * (t + 1 < 4 ? values[t + 1] : 0) - values[t];
  const want = [0, 1, 2, 3].map((t) =>
    [0, 1, 2, 3].filter((k) => t + k < 4).reduce((a, k) => a + (gamma * lam) ** k * delta(t + k), 0),
  );
  const { advantages, returns } = gae(rewards, values, gamma, lam);
  close(advantages, want);
  close(
    returns,
    want.map((a, t) => a + values[t]),
  );
  // γ = λ = 1: the advantage is the sum of future rewards minus the value.
  close(
    gae(rewards, values, 1, 1).advantages,
    [0, 1, 2, 3].map((t) => rewards.slice(t).reduce((a, b) => a + b, 0) - values[t]),
  );
});

test('whitening gives zero mean and unit variance across rows; shiftMean false keeps the mean', () => {
  const rows = [Float32Array.from([1, 2, 3]), Float32Array.from([10, -4])];
  const flat = (rs: Float32Array[]) => rs.flatMap((r) => Array.from(r));
  const w = flat(whiten(rows));
  const m = w.reduce((a, b) => a + b, 0) / w.length;
  const v = w.reduce((a, b) => a + (b - m) ** 2, 0) / (w.length - 1);
  assert.ok(Math.abs(m) < 1e-6 && Math.abs(v - 1) < 1e-5, `mean ${m} var ${v}`);
  const kept = flat(whiten(rows, false));
  assert.ok(Math.abs(kept.reduce((a, b) => a + b, 0) / kept.length - 12 / 5) < 1e-5);
});

test('KL estimators: k1 is the log-ratio, k3 is never negative, both 0 when the policies agree', () => {
  const lp = Float32Array.from([-1, -2, -0.5]),
    ref = Float32Array.from([-1.5, -2, -0.2]);
  close(klEstimate(lp, ref, 'k1'), [0.5, 0, -0.3]);
  const k3 = klEstimate(lp, ref, 'k3');
  close(k3, [Math.exp(-0.5) - 1 + 0.5, 0, Math.exp(0.3) - 1 - 0.3]);
  assert.ok(k3.every((k) => k >= 0));
  const { rewards, nonScore } = tokenRewards(Float32Array.from([0.5, 0, -0.3]), 0.1, 2);
  close(nonScore, [-0.05, 0, 0.03]);
  close(rewards, [-0.05, 0, 2.03]);
  assert.ok(adaptKlCoef(0.1, 12, 6, 100, 10) > 0.1 && adaptKlCoef(0.1, 3, 6, 100, 10) < 0.1);
});

test('gradients of the clipped policy loss and clipped value loss pass the finite-difference check', async () => {
  const rng = new Rng(4);
  const rnd = (n: number, s = 1) => Float64Array.from({ length: n }, () => rng.normal() * s);
  const mask = { name: 'mask', shape: [2, 3], data: Float64Array.from([1, 1, 0, 1, 1, 1]), fixed: true };
  // Old log-probs 0.1 away from the new ones: some ratios fall outside the clip range, some inside.
  const logp = rnd(6);
  const old = { name: 'old', shape: [2, 3], data: logp.map((x, i) => x + (i % 2 ? 0.1 : 0.5)), fixed: true };
  const adv = { name: 'adv', shape: [2, 3], data: rnd(6), fixed: true };
  const pg = await gradCheck(
    (lp, o, a, m) => policyLoss(lp, o, a, m, 0.2).loss,
    [{ name: 'lp', shape: [2, 3], data: logp }, old, adv, mask],
  );
  assert.ok(pg.maxRelError <= 1e-5, JSON.stringify(pg));
  const v = rnd(6);
  const vf = await gradCheck(
    (vals, o, r, m) => valueLoss(vals, o, r, m, 0.2).loss,
    [
      { name: 'v', shape: [2, 3], data: v },
      { name: 'old', shape: [2, 3], data: v.map((x, i) => x + (i % 2 ? 0.05 : 0.6)), fixed: true },
      { name: 'ret', shape: [2, 3], data: rnd(6), fixed: true },
      mask,
    ],
  );
  assert.ok(vf.maxRelError <= 1e-5, JSON.stringify(vf));
});

/** A tiny SFT policy that names every food for every animal about evenly, trained once for the tests below. */
const dir = tempDir('ppo');
const base = TINY_BASE;
let sftModel = '';
before(async () => {
  sftModel = await trainAnimalPolicy(dir);
});

const fish = gpt2Tokenizer().encode(' fish')[0];
/** The learnable property: the response names fish. */
const reward = async (_: number[][], responses: number[][]) => responses.map((r) => (r.includes(fish) ? 1 : 0));

function ppoExperiment(iterations: number, overrides: Record<string, unknown> = {}) {
  return parseExperiment(
    {
      ...base,
      model: sftModel,
      ppo: {
        prompts: path.join(dir, 'prompts.jsonl'),
        total_episodes: 16 * iterations,
        per_device_train_batch_size: 16,
        num_mini_batches: 2,
        num_ppo_epochs: 4,
        learning_rate: 6e-4,
        response_length: 8,
        temperature: 1,
        kl_coef: 0.05,
        save_steps: 1000,
        sample_steps: 1000,
        ...overrides,
      },
    },
    'test',
  );
}

const metricsOf = (events: RunEvent[]) => events.flatMap((e) => (e.type === 'metrics' ? [e.values] : []));

test('PPO end to end: a learnable reward rises above the SFT policy and KL stays bounded', async () => {
  const events: RunEvent[] = [];
  await runPpo({
    experiment: ppoExperiment(16),
    outputDir: path.join(dir, 'ppo'),
    reward,
    emit: (e) => events.push(e),
  });
  const metrics = metricsOf(events);
  assert.equal(metrics.length, 16);
  const avg = (rows: Record<string, number>[], key: string) => rows.reduce((a, r) => a + r[key], 0) / rows.length;
  const before = avg(metrics.slice(0, 3), 'objective/scores'),
    after = avg(metrics.slice(-3), 'objective/scores');
  assert.ok(before < 0.5, `the SFT policy already prefers fish (${before})`);
  assert.ok(after > before + 0.3, `mean score ${before} → ${after}`);
  for (const m of metrics) {
    assert.ok(m['objective/kl'] > -0.05, `objective/kl ${m['objective/kl']} is meaningfully negative`);
    assert.ok(m['objective/kl'] < 10, `objective/kl ${m['objective/kl']} blew up`);
    for (const key of ['loss/policy_avg', 'loss/value_avg', 'policy/entropy_avg', 'val/ratio'])
      assert.ok(Number.isFinite(m[key]), key);
  }
  assert.ok(fs.existsSync(path.join(dir, 'ppo', 'model', 'model.safetensors')));
  assert.ok(fs.existsSync(path.join(dir, 'ppo', 'value', 'model.safetensors')));
});

test('PPO: a stopped run resumes to the same metrics as an uninterrupted one', async () => {
  const straight: RunEvent[] = [];
  await runPpo({
    experiment: ppoExperiment(4),
    outputDir: path.join(dir, 'straight'),
    reward,
    emit: (e) => straight.push(e),
  });
  const stop = new AbortController();
  const first = await runPpo({
    experiment: ppoExperiment(4),
    outputDir: path.join(dir, 'resumed'),
    reward,
    signal: stop.signal,
    emit: (e) => {
      if (e.type === 'progress' && e.step === 2) stop.abort();
    },
  });
  assert.equal(first.stopped, true);
  const resumed: RunEvent[] = [];
  await runPpo({
    experiment: ppoExperiment(4),
    outputDir: path.join(dir, 'resumed'),
    resumeFrom: path.dirname(first.modelDir),
    reward,
    emit: (e) => resumed.push(e),
  });
  const want = metricsOf(straight).slice(2),
    got = metricsOf(resumed);
  assert.equal(got.length, 2);
  for (const [i, m] of got.entries()) {
    for (const key of ['objective/scores', 'objective/kl', 'loss/policy_avg', 'loss/value_avg']) {
      assert.ok(
        Math.abs(m[key] - want[i][key]) <= 1e-4 * Math.max(1, Math.abs(want[i][key])),
        `iteration ${i + 3} ${key}: ${m[key]} vs ${want[i][key]}`,
      );
    }
  }
  const logged = fs
    .readFileSync(path.join(dir, 'resumed', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).step);
  assert.deepEqual(logged, [1, 2, 3, 4]);
});

test('PPO: a broken reward stops the run with a clear message and leaves the last checkpoint intact', async () => {
  const out = path.join(dir, 'diverged');
  // A reward model that breaks at the third rollout (returns NaN), as a corrupted one would.
  let calls = 0;
  const breaking = async (p: number[][], r: number[][]) => (++calls >= 3 ? r.map(() => NaN) : reward(p, r));
  const error = await runPpo({
    experiment: ppoExperiment(6, { save_steps: 1 }),
    outputDir: out,
    reward: breaking,
    emit: () => {},
  }).catch((e: Error) => e);
  assert.ok(
    error instanceof Error &&
      /PPO stopped at iteration 3: the reward gave a non-finite score.*last checkpoint/.test(error.message),
    String(error),
  );
  const last = path.join(out, 'checkpoint-2');
  assert.equal(fs.existsSync(path.join(out, 'checkpoint-3')), false);
  const policy = loadCheckpoint(path.join(last, 'policy'));
  assert.equal(policy.trainerState?.step, 2);
  for (const t of policy.params.values())
    assert.ok((t.data as Float32Array).every(Number.isFinite), 'the saved weights are finite');
});

test('PPO: learning_rate 1e308 stops the run at its first iteration without saving its weights, which are not finite', async () => {
  const out = path.join(dir, 'huge-lr');
  const huge = ppoExperiment(2, { learning_rate: 1e308, save_steps: 1, num_ppo_epochs: 1, num_mini_batches: 1 });
  const error = await runPpo({ experiment: huge, outputDir: out, reward, emit: () => {} }).catch((e: Error) => e);
  assert.match(
    String(error),
    /PPO diverged at iteration 1 \(weight "[\w.]+" became (NaN|-?Infinity)\); no checkpoint was saved — lower learning_rate and start again/,
  );
  assert.deepEqual(
    fs.readdirSync(out).filter((name) => name.startsWith('checkpoint-')),
    [],
  );
});

test('PPO: gradient accumulation splits each mini-batch into micro-batches and still learns the same way', async () => {
  const events: RunEvent[] = [];
  await runPpo({
    experiment: ppoExperiment(2, { gradient_accumulation_steps: 2 }),
    outputDir: path.join(dir, 'accumulate'),
    reward,
    emit: (e) => events.push(e),
  });
  const metrics = metricsOf(events);
  assert.equal(metrics.length, 2);
  // The rollout of iteration 1 does not depend on the update, so it matches the run without accumulation.
  const plain: RunEvent[] = [];
  await runPpo({
    experiment: ppoExperiment(2),
    outputDir: path.join(dir, 'plain'),
    reward,
    emit: (e) => plain.push(e),
  });
  assert.equal(metrics[0]['objective/scores'], metricsOf(plain)[0]['objective/scores']);
  for (const m of metrics)
    for (const key of ['loss/policy_avg', 'loss/value_avg', 'policy/approxkl_avg'])
      assert.ok(Number.isFinite(m[key]), key);
  assert.notEqual(metrics[0]['loss/value_avg'], metricsOf(plain)[0]['loss/value_avg']);
});

test('PPO prompts: text as is, a conversation through the chat format with the reply opened; bad lines name file and line', async () => {
  const dir = tempDir('ppo-prompts');
  const file = path.join(dir, 'prompts.jsonl');
  const messages = [
    { role: 'system' as const, content: 'Answer briefly.' },
    { role: 'user' as const, content: 'What does a cat eat?' },
  ];
  fs.writeFileSync(
    file,
    [{ prompt: 'What does a dog eat?', answer: 'bones' }, { prompt: messages }]
      .map((p) => JSON.stringify(p))
      .join('\n'),
  );
  const tokenizer = gpt2Tokenizer();
  const [text, chat] = (await readPrompts(file, tokenizer)).prompts;
  assert.deepEqual(text, {
    text: 'What does a dog eat?',
    prompt: 'What does a dog eat?',
    ids: tokenizer.encode('What does a dog eat?'),
    columns: { answer: 'bones' },
  });
  assert.deepEqual(chat, {
    text: 'What does a cat eat?',
    prompt: messages,
    ids: tokenizer.chat().generationPrompt(messages),
    columns: {},
  });
  assert.notDeepEqual(
    chat.ids,
    tokenizer.encode('What does a cat eat?'),
    'the conversation is rendered, not its last text',
  );

  fs.appendFileSync(file, `\n${JSON.stringify({ prompt: 42 })}`);
  await assert.rejects(
    () => readPrompts(file, tokenizer),
    new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3: .*prompt`),
  );
});

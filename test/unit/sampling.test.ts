import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toOnnx } from '../../src/engine/onnx';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { input } from '../../src/engine/tensor';
import {
  SamplingKnobs,
  blockSize,
  TOP_P_CANDIDATES,
  samplingFeeds,
  samplingHead,
  samplingMode,
  uniforms,
} from '../../src/train/sampling';
import { Rng } from '../../src/util/rng';

const LOGITS = [0.1, 3, -1, 2.5, 2, 0, 1.2, -0.4, 2.2, 0.7, -2, 1.9];

/** The distribution the sampling options describe, written the plain way: sort, cut, renormalise. */
function expected(logits: number[], o: SamplingKnobs): number[] {
  const top = Math.max(...logits);
  let p = logits.map((l) => Math.exp((l - top) / o.temperature));
  const order = [...p.keys()].sort((a, b) => p[b] - p[a]);
  let kept = o.topK > 0 ? order.slice(0, o.topK) : order;
  const total = kept.reduce((a, i) => a + p[i], 0);
  let mass = 0;
  kept = kept.filter((i) => {
    const before = mass;
    mass += p[i] / total;
    return before < o.topP;
  });
  p = p.map((x, i) => (kept.includes(i) ? x : 0));
  const sum = p.reduce((a, b) => a + b, 0);
  return p.map((x) => x / sum);
}

/** `n` draws from the sampling head on one row of logits, with their log-probs. */
async function draw(logits: number[], o: SamplingKnobs, n: number, seed: number) {
  const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });
  const v = logits.length;
  const mode = samplingMode(o, v);
  const program = await runtime.load(toOnnx(samplingHead((x) => x, input('logits', 'float32', ['B', v]), mode)));
  const out = await program.run({
    logits: hostTensor('float32', Float32Array.from(logits), [1, v]),
    ...samplingFeeds(o, mode, v),
    ...(mode === 'greedy' ? {} : uniforms(new Rng(seed), [true], n)),
  });
  await program.release();
  return {
    tokens: Array.from(out.next.data as ArrayLike<number | bigint>, Number),
    logprobs: out.logprob && Array.from(out.logprob.data as Float32Array),
  };
}

/**
 * Pearson's chi-square of the counts against the probabilities, over the tokens that can be drawn;
 * tokens expected fewer than 5 times are pooled into one bin.
 */
function chiSquare(tokens: number[], probs: number[]): { stat: number; df: number } {
  const counts = probs.map(() => 0);
  for (const t of tokens) counts[t]++;
  const bins: [number, number][] = [];
  const pooled: [number, number] = [0, 0];
  probs.forEach((p, i) => {
    if (p === 0) return assert.equal(counts[i], 0, `token ${i} is outside the kept set but was drawn`);
    if (tokens.length * p < 5) {
      pooled[0] += counts[i];
      pooled[1] += tokens.length * p;
    } else bins.push([counts[i], tokens.length * p]);
  });
  if (pooled[1] > 0) bins.push(pooled);
  const stat = bins.reduce((a, [seen, want]) => a + (seen - want) ** 2 / want, 0);
  return { stat, df: bins.length - 1 };
}

/** The 0.999 quantile of chi-square with df degrees of freedom (Wilson–Hilferty; within 1% from df 1). */
const chi2Quantile999 = (df: number) => df * (1 - 2 / (9 * df) + 3.0902 * Math.sqrt(2 / (9 * df))) ** 3;

for (const o of [
  { temperature: 0.7, topK: 0, topP: 1 },
  { temperature: 1.3, topK: 3, topP: 1 },
  { temperature: 1, topK: 0, topP: 0.7 },
  { temperature: 0.9, topK: 6, topP: 0.8 },
]) {
  test(`the graph draws from the distribution the options describe: ${JSON.stringify(o)}`, async () => {
    const { tokens, logprobs } = await draw(LOGITS, o, 20000, 11);
    const { stat, df } = chiSquare(tokens, expected(LOGITS, o));
    assert.ok(df >= 1 && stat < chi2Quantile999(df), `chi-square ${stat.toFixed(2)} on ${df} degrees of freedom`);
    // Each token's log-prob is under the whole tempered distribution, whatever was cut.
    const full = expected(LOGITS, { ...o, topK: 0, topP: 1 });
    tokens.slice(0, 50).forEach((t, i) => assert.ok(Math.abs(logprobs![i] - Math.log(full[t])) < 1e-5));
  });
}

for (const v of [600, 601]) {
  test(`a vocabulary of ${v} tokens: blocks of ${blockSize(v)}${v % blockSize(v) ? ', the last padded,' : ''} draw as exactly`, async () => {
    const likely = [3, 255, 256, 300, 511, 512, 599];
    const logits = Array.from({ length: v }, (_, i) => (likely.includes(i) ? 2 + (i % 5) / 2 : -1 + Math.sin(i)));
    for (const o of [
      { temperature: 1, topK: 0, topP: 1 },
      { temperature: 0.8, topK: 5, topP: 1 },
    ]) {
      const { tokens } = await draw(logits, o, 20000, 8);
      const { stat, df } = chiSquare(tokens, expected(logits, o));
      assert.ok(df >= 4 && stat < chi2Quantile999(df), `chi-square ${stat.toFixed(2)} on ${df} degrees of freedom`);
    }
  });
}

test('the same seed draws the same tokens; greedy is the argmax', async () => {
  const o = { temperature: 1, topK: 5, topP: 0.9 };
  assert.deepEqual((await draw(LOGITS, o, 200, 4)).tokens, (await draw(LOGITS, o, 200, 4)).tokens);
  assert.notDeepEqual((await draw(LOGITS, o, 200, 4)).tokens, (await draw(LOGITS, o, 200, 5)).tokens);
  assert.deepEqual((await draw(LOGITS, { temperature: 0, topK: 0, topP: 1 }, 1, 0)).tokens, [1]);
});

test('greedy picks the first largest logit across blocks, a padded last block included', async () => {
  for (const v of [12, 1009, 50257]) {
    const rng = new Rng(v);
    const row = () => Array.from(Float32Array.from({ length: v }, () => rng.normal()));
    const firstMax = (l: number[]) => l.indexOf(Math.max(...l));
    const rows = [row(), row(), row()];
    rows[1][v - 1] = rows[1][0] = 9; // tied with the first token, whose copies pad the last block
    rows[2][v >> 1] = rows[2][v - 2] = 7; // tied in two blocks
    const greedy = { temperature: 0, topK: 0, topP: 1 };
    for (const l of rows) assert.deepEqual((await draw(l, greedy, 1, 0)).tokens, [firstMax(l)]);
  }
});

test(`top-p alone draws among the ${TOP_P_CANDIDATES} most likely tokens; exact when they hold top_p`, async () => {
  // A flat tail: 2000 tokens, the first 10 holding most of the mass.
  const logits = Array.from({ length: 2000 }, (_, i) => (i < 10 ? 8 - i * 0.1 : Math.sin(i)));
  const o = { temperature: 1, topK: 0, topP: 0.5 };
  const { tokens } = await draw(logits, o, 5000, 3);
  const { stat, df } = chiSquare(tokens, expected(logits, o));
  assert.ok(stat < chi2Quantile999(df), `chi-square ${stat.toFixed(2)} on ${df} degrees of freedom`);
  // Past the candidates' mass, the tail beyond them is what is dropped.
  const wide = await draw(logits, { temperature: 1, topK: 0, topP: 0.9999 }, 2000, 3);
  const rank = [...logits.keys()].sort((a, b) => logits[b] - logits[a]);
  const candidates = new Set(rank.slice(0, TOP_P_CANDIDATES));
  assert.ok(wide.tokens.every((t) => candidates.has(t)));
});

/**
 * DPO's loss and metrics against an independent PyTorch implementation of TRL's
 * (bench/reference/dpo_torch.py) on fixed logits and reference log-probs, for every loss type; and
 * the gradient check of the whole objective, from the logits to the loss. PyTorch reads the whole
 * [2P, T, V] logits and a mask, as TRL does; ours the scored positions' logits gathered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { gradCheck } from '../../src/engine/gradcheck';
import { toOnnx } from '../../src/engine/onnx';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { tokenLogprobs } from '../../src/engine/nn';
import { mean } from '../../src/engine/ops';
import { DType, Tensor, input } from '../../src/engine/tensor';
import { DpoLossSettings, ScoredTokens, dpoObjective } from '../../src/train/dpo-loss';
import { Rng } from '../../src/util/rng';
import { tempDir } from '../helpers/temp';

const torchAvailable = (() => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const needsTorch = {
  skip: torchAvailable ? false : 'PyTorch is not installed (apt-get install python3-torch libopenblas0-pthread)',
};

const SETTINGS: DpoLossSettings[] = [
  { beta: 0.1, loss_type: 'sigmoid', label_smoothing: 0 },
  { beta: 0.5, loss_type: 'sigmoid', label_smoothing: 0.1 },
  { beta: 0.1, loss_type: 'robust', label_smoothing: 0.2 },
  { beta: 0.3, loss_type: 'hinge', label_smoothing: 0 },
  { beta: 0.1, loss_type: 'ipo', label_smoothing: 0 },
  { beta: 0.1, loss_type: 'sigmoid', label_smoothing: 0, rpo_alpha: 0.5 },
];

/** P = 3 pairs as 6 rows of T = 5 positions over V = 7 tokens: a prompt, a completion, then padding. */
const [P, T, V] = [3, 5, 7];
const rng = new Rng(11);
const LOGITS = Float64Array.from({ length: 2 * P * T * V }, () => 3 * rng.normal());
const TARGETS = Int32Array.from({ length: 2 * P * T }, () => rng.int(V));
const MASK = Float64Array.from({ length: 2 * P * T }, (_, i) => {
  const [row, t] = [Math.floor(i / T), i % T];
  return t >= 1 + (row % 2) && t < T - (row % 3 === 0 ? 0 : 1) ? 1 : 0;
});
// Near the policy's own log-probs, so the pairs fall on both sides of the reference.
const REF_CHOSEN = Float64Array.from({ length: P }, () => -12 + 4 * rng.normal());
const REF_REJECTED = Float64Array.from({ length: P }, () => -12 + 4 * rng.normal());

// What our graph reads: the logits and targets at the N scored positions, and each one's row.
const SCORED = [...MASK.keys()].filter((i) => MASK[i] === 1);
const N = SCORED.length;
const SCORED_LOGITS = Float64Array.from({ length: N * V }, (_, k) => LOGITS[SCORED[Math.floor(k / V)] * V + (k % V)]);
const SCORED_TARGETS = Int32Array.from(SCORED, (i) => TARGETS[i]);
const ROWS = Float64Array.from({ length: 2 * P * N }, (_, k) =>
  Math.floor(SCORED[k % N] / T) === Math.floor(k / N) ? 1 : 0,
);

/** The log-prob of each scored token and its mean logit, from their logits [N, V]. */
const scoredTokens = (logits: Tensor, targets: Tensor): ScoredTokens => ({
  logprobs: tokenLogprobs(logits, targets),
  meanLogit: mean(logits, -1),
});

/** Our loss and metrics on the fixed batch, computed in `dtype`. */
async function ours(s: DpoLossSettings, dtype: DType): Promise<Record<string, number>> {
  const logits = input('logits', dtype, [N, V]);
  const targets = input('targets', 'int32', [N]);
  const rows = input('rows', dtype, [2 * P, N]);
  const reference = { chosen: input('ref_chosen', dtype, [P]), rejected: input('ref_rejected', dtype, [P]) };
  const { loss, metrics } = dpoObjective(scoredTokens(logits, targets), rows, reference, s);
  const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });
  const program = await runtime.load(toOnnx({ loss, ...metrics }, 'dpo_loss'));
  const float = (data: Float64Array, shape: number[]) =>
    hostTensor(dtype, dtype === 'float64' ? data : Float32Array.from(data), shape);
  const out = await program.run({
    logits: float(SCORED_LOGITS, [N, V]),
    targets: hostTensor('int32', SCORED_TARGETS, [N]),
    rows: float(ROWS, [2 * P, N]),
    ref_chosen: float(REF_CHOSEN, [P]),
    ref_rejected: float(REF_REJECTED, [P]),
  });
  await program.release();
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Number(t.data[0])]));
}

/** TRL's loss and metrics from bench/reference/dpo_torch.py, in float64. */
function trl(s: DpoLossSettings): Record<string, number> {
  const dir = tempDir('dpo-loss');
  const nested = (data: ArrayLike<number>, shape: number[]): unknown =>
    shape.length === 1
      ? Array.from(data)
      : Array.from({ length: shape[0] }, (_, i) => {
          const size = shape.slice(1).reduce((a, b) => a * b, 1);
          return nested(Array.prototype.slice.call(data, i * size, (i + 1) * size), shape.slice(1));
        });
  const casePath = path.join(dir, 'case.json');
  fs.writeFileSync(
    casePath,
    JSON.stringify({
      logits: nested(LOGITS, [2 * P, T, V]),
      targets: nested(TARGETS, [2 * P, T]),
      mask: nested(MASK, [2 * P, T]),
      ref_chosen_logps: Array.from(REF_CHOSEN),
      ref_rejected_logps: Array.from(REF_REJECTED),
      beta: s.beta,
      loss_type: s.loss_type,
      label_smoothing: s.label_smoothing,
      rpo_alpha: s.rpo_alpha ?? null,
    }),
  );
  const outPath = path.join(dir, 'out.json');
  execFileSync('/usr/bin/python3', ['bench/reference/dpo_torch.py', '--input', casePath, '--output', outPath]);
  const out = JSON.parse(fs.readFileSync(outPath, 'utf8'));
  return out;
}

const describe = (s: DpoLossSettings) =>
  `${s.loss_type}, beta ${s.beta}, label_smoothing ${s.label_smoothing}${s.rpo_alpha ? `, rpo_alpha ${s.rpo_alpha}` : ''}`;

for (const s of SETTINGS) {
  test(`DPO loss and metrics match TRL's (PyTorch) within 1e-6: ${describe(s)}`, needsTorch, async () => {
    const expected = trl(s);
    const names = ['loss', ...Object.keys(expected).filter((k) => k !== 'loss')];
    assert.equal(names.length, s.rpo_alpha ? 10 : 9, JSON.stringify(expected));
    const exact = await ours(s, 'float64');
    const float32 = await ours(s, 'float32');
    assert.deepEqual(Object.keys(exact).sort(), names.sort());
    for (const name of names) {
      assert.ok(Math.abs(exact[name] - expected[name]) <= 1e-6, `${name}: ${exact[name]} vs TRL ${expected[name]}`);
      const tolerance = 1e-5 * Math.max(1, Math.abs(expected[name]));
      assert.ok(Math.abs(float32[name] - expected[name]) <= tolerance, `${name} in float32: ${float32[name]}`);
    }
    // The batch has pairs on both sides: accuracy is neither 0 nor 1.
    assert.ok(expected['rewards/accuracies'] > 0 && expected['rewards/accuracies'] < 1);
  });
}

for (const s of SETTINGS) {
  test(`DPO objective passes the gradient check from the logits: ${describe(s)}`, async () => {
    const res = await gradCheck(
      (logits, targets, rows, refChosen, refRejected) =>
        dpoObjective(scoredTokens(logits, targets), rows, { chosen: refChosen, rejected: refRejected }, s).loss,
      [
        { name: 'logits', shape: [N, V], data: SCORED_LOGITS.slice() },
        { name: 'targets', shape: [N], data: SCORED_TARGETS, dtype: 'int32' },
        { name: 'rows', shape: [2 * P, N], data: ROWS, fixed: true },
        { name: 'ref_chosen', shape: [P], data: REF_CHOSEN.slice() },
        { name: 'ref_rejected', shape: [P], data: REF_REJECTED.slice() },
      ],
    );
    assert.ok(res.maxRelError <= 1e-5, `max relative error ${res.maxRelError}: ${JSON.stringify(res.worst)}`);
  });
}

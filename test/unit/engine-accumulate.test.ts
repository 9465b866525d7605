import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nn from '../../src/engine/nn';
import { adamw } from '../../src/engine/optim';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { State } from '../../src/engine/state';
import { TrainStep } from '../../src/engine/step';
import { buildTrainGraph } from '../../src/engine/train-graph';
import { input } from '../../src/engine/tensor';
import { Rng } from '../../src/util/rng';

/** A small regression model: mean squared error of gelu(x W1) W2 against targets. */
function graph(accumulate: boolean) {
  const x = input('x', 'float32', ['B', 3]),
    y = input('y', 'float32', ['B', 2]);
  const w1 = input('w1', 'float32', [3, 4]),
    w2 = input('w2', 'float32', [4, 2]);
  const err = nn.linear(nn.gelu(nn.linear(x, w1)), w2).sub(y);
  return buildTrainGraph({
    loss: err.mul(err).mean(),
    params: [w1, w2],
    optimizer: adamw({ weightDecay: 0.1 }),
    maxGradNorm: 0.5,
    accumulate,
  });
}

test('gradient accumulation over two micro-batches equals one step on both together', async () => {
  const rng = new Rng(9);
  const rows = 8;
  const xs = Float32Array.from({ length: rows * 3 }, () => rng.normal());
  const ys = Float32Array.from({ length: rows * 2 }, () => rng.normal());
  const init = {
    w1: Float32Array.from({ length: 12 }, () => rng.normal()),
    w2: Float32Array.from({ length: 8 }, () => rng.normal()),
  };
  const feed = (from: number, to: number) => ({
    x: hostTensor('float32', xs.slice(from * 3, to * 3), [to - from, 3]),
    y: hostTensor('float32', ys.slice(from * 2, to * 2), [to - from, 2]),
  });
  const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });

  const train = async (accumulate: boolean) => {
    const state = new State(runtime);
    state.setHost('w1', init.w1, [3, 4]);
    state.setHost('w2', init.w2, [4, 2]);
    const step = await TrainStep.create(graph(accumulate), state);
    const metrics = [];
    for (let t = 1; t <= 4; t++)
      metrics.push(await step.run(accumulate ? [feed(0, 4), feed(4, 8)] : feed(0, 8), 0.05, t));
    const params = await state.read(['w1', 'w2', 'exp_avg_sq.w1']);
    await step.release();
    return { metrics, params };
  };
  const whole = await train(false),
    split = await train(true);
  const close = (a: number, b: number, what: string) =>
    assert.ok(Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
  whole.metrics.forEach((m, i) => {
    close(split.metrics[i].loss, m.loss, `loss at step ${i + 1}`);
    close(split.metrics[i].grad_norm, m.grad_norm, `grad_norm at step ${i + 1}`);
  });
  assert.ok(
    whole.metrics.some((m) => m.grad_norm > 0.5),
    'clipping was never active',
  );
  for (const [name, values] of whole.params)
    values.forEach((v, i) => close(split.params.get(name)![i], v, `${name}[${i}]`));
});

test('a step built without accumulation refuses several micro-batches', async () => {
  const state = new State(await Runtime.create({ provider: 'cpu', threads: 1 }));
  state.setHost('w1', new Float32Array(12), [3, 4]);
  state.setHost('w2', new Float32Array(8), [4, 2]);
  const step = await TrainStep.create(graph(false), state);
  const batch = {
    x: hostTensor('float32', new Float32Array(3), [1, 3]),
    y: hostTensor('float32', new Float32Array(2), [1, 2]),
  };
  await assert.rejects(step.run([batch, batch], 0.1, 1), /without gradient accumulation/);
});

test('a frozen tensor in the state feeds the step, with or without accumulation, and stays as it was', async () => {
  // A LoRA base or a DPO reference: a graph input the loss reads that is not trained.
  const x = input('x', 'float32', ['B', 3]),
    y = input('y', 'float32', ['B', 2]);
  const w = input('w', 'float32', [3, 2]),
    frozen = input('ref.w', 'float32', [3, 2]);
  const err = nn.linear(x, w.add(frozen)).sub(y);
  const runtime = await Runtime.create({ provider: 'cpu', threads: 1 });
  const rng = new Rng(3);
  const base = Float32Array.from({ length: 6 }, () => rng.normal());
  const batch = {
    x: hostTensor(
      'float32',
      Float32Array.from({ length: 6 }, () => rng.normal()),
      [2, 3],
    ),
    y: hostTensor('float32', new Float32Array(4), [2, 2]),
  };
  for (const accumulate of [false, true]) {
    const state = new State(runtime);
    state.setHost('w', new Float32Array(6), [3, 2]);
    state.setHost('ref.w', base, [3, 2]);
    const step = await TrainStep.create(
      buildTrainGraph({ loss: err.mul(err).mean(), params: [w], optimizer: adamw({ weightDecay: 0 }), accumulate }),
      state,
    );
    const m = await step.run(accumulate ? [batch, batch] : batch, 0.1, 1);
    assert.ok(
      m.loss > 0 && m.grad_norm > 0,
      `accumulate=${accumulate}: the loss saw the frozen tensor (loss ${m.loss})`,
    );
    assert.deepEqual((await state.read(['ref.w'])).get('ref.w'), base);
    assert.ok(!state.has('exp_avg.ref.w'), 'a frozen tensor has no optimizer slots');
    await step.release();
  }
});

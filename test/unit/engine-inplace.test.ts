import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ops from '../../src/engine/ops';
import { adamw } from '../../src/engine/optim';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { State } from '../../src/engine/state';
import { TrainStep } from '../../src/engine/step';
import { buildTrainGraph, overwritable } from '../../src/engine/train-graph';
import { toOnnx } from '../../src/engine/onnx';
import { input } from '../../src/engine/tensor';

// loss = mean((x W + b - y)²): W decays, b does not.
const x = input('x', 'float32', [4, 3]),
  y = input('y', 'float32', [4, 2]);
const w = input('W', 'float32', [3, 2]),
  b = input('b', 'float32', [2]);
const err = ops.matmul(x, w).add(b).sub(y);
const loss = ops.mean(err.mul(err));
const feeds = {
  x: hostTensor(
    'float32',
    Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)),
    [4, 3],
  ),
  y: hostTensor(
    'float32',
    Float32Array.from({ length: 8 }, (_, i) => Math.cos(i)),
    [4, 2],
  ),
};

async function train(inPlace: boolean, steps: number, updateApart: boolean) {
  const graph = buildTrainGraph({
    loss,
    params: [w, b],
    optimizer: adamw({ weightDecay: 0.1 }),
    maxGradNorm: 1,
    updateApart,
  });
  if (!inPlace) graph.overwrites = [];
  const state = new State(await Runtime.create({ provider: 'cpu', threads: 1 }));
  state.setHost('W', Float32Array.from([0.5, -0.3, 0.2, 0.1, -0.4, 0.7]), [3, 2]);
  state.setHost('b', Float32Array.from([0.1, -0.2]), [2]);
  const step = await TrainStep.create(graph, state);
  const losses: number[] = [];
  for (let i = 1; i <= steps; i++) losses.push((await step.run(feeds, 0.05, i)).loss);
  return { graph, state, step, losses };
}

for (const updateApart of [false, true])
  test(`AdamW updates every parameter and moment in place, with the same results as new tensors${updateApart ? ' (update apart)' : ''}`, async () => {
    const a = await train(true, 5, updateApart),
      c = await train(false, 5, updateApart);
    assert.deepEqual(a.graph.overwrites.sort(), ['W', 'b', 'exp_avg.W', 'exp_avg.b', 'exp_avg_sq.W', 'exp_avg_sq.b']);
    assert.deepEqual(a.losses, c.losses);
    // The tensors stay the State's own from one step to the next.
    const before = a.state.get('exp_avg.W');
    await a.step.run(feeds, 0.05, 6);
    await c.step.run(feeds, 0.05, 6);
    assert.equal(a.state.get('exp_avg.W'), before);
    const names = ['W', 'b', 'exp_avg.W', 'exp_avg_sq.b'];
    const [got, want] = [await a.state.read(names), await c.state.read(names)];
    for (const n of names) assert.deepEqual(Array.from(got.get(n)!), Array.from(want.get(n)!), n);
  });

test('memory handed out by State.read, or set from outside, is never overwritten', async () => {
  const initial = Float32Array.from([0.5, -0.3, 0.2, 0.1, -0.4, 0.7]);
  const graph = buildTrainGraph({ loss, params: [w, b], optimizer: adamw() });
  const state = new State(await Runtime.create({ provider: 'cpu', threads: 1 }));
  state.setHost('W', initial, [3, 2]);
  state.setHost('b', Float32Array.from([0.1, -0.2]), [2]);
  const step = await TrainStep.create(graph, state);
  await step.run(feeds, 0.05, 1);
  assert.deepEqual(Array.from(initial), [0.5, -0.3, 0.2, 0.1, -0.4, 0.7].map(Math.fround));
  const read = Array.from((await state.read(['W'])).get('W')!);
  const held = (await state.read(['W'])).get('W')!;
  await step.run(feeds, 0.05, 2);
  assert.deepEqual(Array.from(held), read);
  assert.notDeepEqual(Array.from((await state.read(['W'])).get('W')!), read);
});

test('a state input read after its new value could be written is not overwritten', () => {
  const p = input('p', 'float32', [3]);
  // "late" reads p but is not an ancestor of new:p, so it might run after p was overwritten.
  const outputs = { 'new:p': p.mul(0.5), late: ops.sum(ops.reshape(p, [3, 1])) };
  assert.deepEqual(overwritable(outputs, ['p']), []);
  assert.deepEqual(overwritable({ 'new:p': p.mul(0.5), early: ops.sum(p) }, ['p']), []);
  const n = ops.sum(p);
  assert.deepEqual(overwritable({ 'new:p': p.sub(n), norm: n }, ['p']), ['p']);
  // A new value that is not elementwise in p (a broadcast or a product) is never written over it.
  assert.deepEqual(
    overwritable({ 'new:p': ops.reshape(ops.matmul(ops.reshape(p, [3, 1]), ops.reshape(p, [1, 3])), [9]) }, ['p']),
    [],
  );
});

test('an output written into a given tensor comes back as that tensor, with no copy left alive', async () => {
  const n = 1 << 22;
  const doubled = input('p', 'float32', [n]).mul(2);
  const program = await (
    await Runtime.create({ provider: 'cpu', threads: 1 })
  ).load(toOnnx({ 'new:p': doubled, total: ops.sum(doubled) }, 'double'));
  const state = hostTensor('float32', new Float32Array(n).fill(1.5), [n]);
  const before = process.memoryUsage().arrayBuffers;
  const out = await program.run({ p: state }, { 'new:p': state });
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.equal(out['new:p'], state);
  assert.equal((state.data as Float32Array)[n - 1], 3);
  assert.equal((out.total.data as Float32Array)[0], 3 * n);
  // onnxruntime-node returns a copy of every output (16 MiB here); the copy of p's is freed at once.
  assert.ok(grown < n, `array buffers grew by ${grown} bytes`);
  await program.release();
});

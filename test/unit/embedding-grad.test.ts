/**
 * The embedding gradient (Gather's VJP) with repeated token ids, on every CPU thread: each row's
 * updates are all counted, and every run gives the same bits. onnxruntime's CPU ScatterND adds
 * its updates on several threads without atomics, so it lost some of them on a few runs in a
 * hundred; training then did not repeat with the same seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'os';
import { grad } from '../../src/engine/autodiff';
import { toOnnx } from '../../src/engine/onnx';
import { gather, sum } from '../../src/engine/ops';
import { Runtime, hostTensor } from '../../src/engine/runtime';
import { input } from '../../src/engine/tensor';

test('the embedding gradient of repeated ids counts every update and is the same on every run, on every thread', async () => {
  const [V, D, B, T, distinct] = [64, 256, 16, 256, 8];
  const wte = input('wte', 'float32', [V, D]);
  const ids = input('ids', 'int32', [B, T]);
  const upstream = input('upstream', 'float32', [B, T, D]);
  const [dWte] = grad(sum(gather(wte, ids).mul(upstream)), [wte]);
  const runtime = await Runtime.create({ provider: 'cpu', threads: os.availableParallelism() });
  const program = await runtime.load(toOnnx({ dWte }));
  const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 5) % distinct);
  // Small whole numbers: every sum is exact in float32, whatever the order of the additions.
  const g = Float32Array.from({ length: B * T * D }, (_, i) => (i % 7) - 3);
  const expected = new Float32Array(V * D);
  tokens.forEach((id, n) => {
    for (let j = 0; j < D; j++) expected[id * D + j] += g[n * D + j];
  });
  const feeds = {
    wte: hostTensor('float32', new Float32Array(V * D), [V, D]),
    ids: hostTensor('int32', tokens, [B, T]),
    upstream: hostTensor('float32', g, [B, T, D]),
  };
  try {
    for (let run = 0; run < 400; run++) {
      const got = (await program.run(feeds)).dWte.data as Float32Array;
      const wrong = got.findIndex((v, k) => v !== expected[k]);
      assert.equal(
        wrong,
        -1,
        `run ${run}, ${runtime.threads} threads: element ${wrong} is ${got[wrong]}, not ${expected[wrong]}`,
      );
    }
  } finally {
    await program.release();
  }
});

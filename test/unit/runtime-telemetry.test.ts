import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

test("a process that runs a graph leaves no log of onnxruntime's telemetry library behind", () => {
  const script = [
    "const { Runtime, hostTensor } = require('./src/engine/runtime');",
    "const { toOnnx } = require('./src/engine/onnx');",
    "const { input } = require('./src/engine/tensor');",
    "require('./src/engine/ops');",
    '(async () => {',
    "  const rt = await Runtime.create({ provider: 'cpu', threads: 1 });",
    "  const program = await rt.load(toOnnx({ y: input('x', 'float32', [2]).mul(2) }));",
    "  const { y } = await program.run({ x: hostTensor('float32', Float32Array.of(1, 2), [2]) });",
    '  await program.release();',
    '  console.log(JSON.stringify({ pid: process.pid, y: Array.from(y.data) }));',
    '})();',
  ].join('\n');
  const { ORT_DISABLE_TELEMETRY: _, ...env } = process.env;
  const r = spawnSync(process.execPath, ['--import', require.resolve('tsx'), '-e', script], {
    cwd: path.resolve(__dirname, '..', '..'),
    env,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const { pid, y } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { pid: number; y: number[] };
  assert.deepEqual(y, [2, 4]);
  for (const dir of new Set(['/tmp', os.tmpdir()]))
    assert.ok(!fs.existsSync(path.join(dir, `mat-debug-${pid}.log`)), `${dir}/mat-debug-${pid}.log was written`);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  decodeSafetensors,
  encodeSafetensors,
  NamedTensor,
  numel,
  readSafetensors,
  writeSafetensors,
} from '../../src/model/safetensors';
import { configFromHF, configToHF, Head, ModelConfig, presetConfig } from '../../src/model/config';
import { paramShapes } from '../../src/model/decoder';
import { loadCheckpoint, OptimizerState, saveCheckpoint, saveMultiModelCheckpoint } from '../../src/model/checkpoint';
import { Rng } from '../../src/util/rng';
import { MINI, scratchFolder } from '../helpers/checkpoints';

const { scratch, freshDir } = scratchFolder('checkpoint-test');

function f32(shape: number[], values: number[]): NamedTensor {
  return { dtype: 'float32', shape, data: Float32Array.from(values) };
}

function randomTensor(rng: Rng, shape: number[]): NamedTensor {
  return { dtype: 'float32', shape, data: Float32Array.from({ length: numel(shape) }, () => rng.normal()) };
}

function randomParams(config: ModelConfig, rng: Rng, head: Head = 'lm'): Map<string, NamedTensor> {
  const shapes = paramShapes(config, { head });
  return new Map([...shapes].map(([name, shape]) => [name, randomTensor(rng, shape)]));
}

function randomOptimizerState(params: Map<string, NamedTensor>, rng: Rng): OptimizerState {
  const like = () => new Map([...params].map(([name, t]) => [name, randomTensor(rng, t.shape)]));
  return { step: 7, expAvg: like(), expAvgSq: like() };
}

/** Same names, dtypes, shapes and bytes (so NaN payloads and -0 count). */
function assertSameTensors(actual: Map<string, NamedTensor>, expected: Map<string, NamedTensor>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [name, e] of expected) {
    const a = actual.get(name)!;
    assert.equal(a.dtype, e.dtype, name);
    assert.deepEqual(a.shape, e.shape, name);
    const bytes = (t: NamedTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    assert.ok(bytes(a).equals(bytes(e)), `${name}: bytes differ`);
  }
}

/** A safetensors file from a hand-written header and data section. */
function rawSafetensors(header: object, data: Uint8Array, headerLength?: number): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerLength ?? json.length));
  return Buffer.concat([prefix, json, data]);
}

test('safetensors round-trips every dtype, whatever the header padding', () => {
  for (let nameLength = 1; nameLength <= 8; nameLength++) {
    const tensors = new Map<string, NamedTensor>([
      ['x'.repeat(nameLength), f32([2, 3], [1.5, -0, NaN, Infinity, -3.25e-38, 7])],
      ['f64', { dtype: 'float64', shape: [3], data: Float64Array.from([Math.PI, -1e300, 5e-324]) }],
      ['i32', { dtype: 'int32', shape: [2, 2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1, 0, -1]) }],
      ['i64', { dtype: 'int64', shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n]) }],
      ['scalar', f32([], [42])],
      ['empty', f32([0, 4], [])],
    ]);
    const buf = encodeSafetensors(tensors, { format: 'pt' });
    const headerLength = Number(buf.readBigUInt64LE(0));
    assert.equal(headerLength % 8, 0);
    assert.match(buf.subarray(8, 8 + headerLength).toString(), /^\{.*\} *$/);
    const decoded = decodeSafetensors(buf, 'mem');
    assertSameTensors(decoded.tensors, tensors);
    assert.deepEqual(decoded.metadata, { format: 'pt' });
  }
});

test('safetensors writes to disk and reads back, with tensors taken from views of larger buffers', () => {
  const backing = new Float32Array([0, 1, 2, 3, 4, 5, 6]);
  const file = path.join(scratch, 'view.safetensors');
  const tensors = new Map<string, NamedTensor>([['v', { dtype: 'float32', shape: [3], data: backing.subarray(2, 5) }]]);
  writeSafetensors(file, tensors);
  const read = readSafetensors(file);
  assert.deepEqual([...read.tensors.get('v')!.data], [2, 3, 4]);
  assert.deepEqual(read.metadata, {});
  assert.deepEqual(
    fs.readdirSync(scratch).filter((n) => n.includes('view')),
    ['view.safetensors'],
  );
});

test('safetensors decodes F16 and BF16 to float32', () => {
  const f16 = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555];
  const bf16 = [0x3f80, 0xc040, 0x4049, 0x7f80, 0x0001];
  const data = Buffer.from(Uint16Array.from([...f16, ...bf16]).buffer);
  const buf = rawSafetensors(
    {
      h: { dtype: 'F16', shape: [f16.length], data_offsets: [0, 2 * f16.length] },
      b: { dtype: 'BF16', shape: [bf16.length], data_offsets: [2 * f16.length, data.length] },
    },
    data,
  );
  const { tensors } = decodeSafetensors(buf, 'half.safetensors');
  assert.equal(tensors.get('h')!.dtype, 'float32');
  assert.deepEqual([...tensors.get('h')!.data], [1, -2, 65504, 2 ** -24, -0, Infinity, -Infinity, NaN, 0.333251953125]);
  assert.deepEqual(
    [...tensors.get('b')!.data],
    [1, -3, 3.140625, Infinity, new Float32Array(new Uint32Array([0x10000]).buffer)[0]],
  );
});

test('corrupt safetensors files give errors naming the file and tensor', () => {
  const good = encodeSafetensors(new Map([['w', f32([4], [1, 2, 3, 4])]]));
  const headerEnd = 8 + Number(good.readBigUInt64LE(0));
  assert.throws(
    () => decodeSafetensors(good.subarray(0, good.length - 2), 'cut.safetensors'),
    /cut\.safetensors: tensor "w": data_offsets \[0, 16\] fall outside the 14 data bytes/,
  );
  assert.throws(
    () => decodeSafetensors(good.subarray(0, 5), 'tiny.safetensors'),
    /tiny\.safetensors: not a safetensors file/,
  );
  const huge = Buffer.from(good);
  huge.writeBigUInt64LE(1n << 40n, 0);
  assert.throws(
    () => decodeSafetensors(huge, 'len.safetensors'),
    /len\.safetensors: header length 1099511627776 is beyond/,
  );
  assert.throws(
    () => decodeSafetensors(rawSafetensors({}, new Uint8Array(), 1), 'json.safetensors'),
    /json\.safetensors: header is not valid JSON/,
  );

  const data = new Uint8Array(16);
  const overlap = rawSafetensors(
    {
      a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
      b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    },
    data,
  );
  assert.throws(
    () => decodeSafetensors(overlap, 'overlap.safetensors'),
    /overlap\.safetensors: tensor "b" overlaps tensor "a"/,
  );
  const wrongSize = rawSafetensors({ a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, data);
  assert.throws(
    () => decodeSafetensors(wrongSize, 'size.safetensors'),
    /size\.safetensors: tensor "a": F32 \[2,3\] needs 24 bytes, data_offsets span 16/,
  );
  const badDtype = rawSafetensors({ a: { dtype: 'C64', shape: [2], data_offsets: [0, 16] } }, data);
  assert.throws(
    () => decodeSafetensors(badDtype, 'dtype.safetensors'),
    /dtype\.safetensors: tensor "a": unsupported dtype "C64"/,
  );

  const file = path.join(scratch, 'truncated.safetensors');
  fs.writeFileSync(file, good.subarray(0, headerEnd + 3));
  assert.throws(() => readSafetensors(file), new RegExp(`${file.replace(/[.\\]/g, '\\$&')}: tensor "w"`));
});

test('a failed safetensors write leaves the previous file untouched', () => {
  const dir = freshDir();
  fs.mkdirSync(dir);
  const file = path.join(dir, 'm.safetensors');
  writeSafetensors(file, new Map([['w', f32([1], [1])]]));
  const bad = new Map<string, NamedTensor>([['w', f32([2], [1])]]);
  assert.throws(
    () => writeSafetensors(file, bad),
    /m\.safetensors: tensor "w": shape \[2\] needs 2 values, data has 1/,
  );
  assert.deepEqual([...readSafetensors(file).tensors.get('w')!.data], [1]);
  assert.deepEqual(fs.readdirSync(dir), ['m.safetensors']);
});

test('config presets, validation and config.json round trip', () => {
  assert.equal(presetConfig('gpt2-medium').nEmbd, 1024);
  assert.throws(
    () => presetConfig('gpt5'),
    /unknown model preset "gpt5" \(known: tiny, gpt2, gpt2-medium, tiny-llama, smollm2-135m, /,
  );
  const params = (c: ModelConfig) => [...paramShapes(c).values()].reduce((n, s) => n + numel(s), 0);
  assert.equal(params(presetConfig('gpt2')), 124439808);
  assert.equal(params(presetConfig('gpt2-medium')), 354823168);

  const hf = configToHF({ ...MINI, hfExtra: { bos_token_id: 0, n_inner: null } }, 'score');
  assert.equal(hf.num_labels, 1);
  assert.deepEqual(hf.architectures, ['GPT2ForSequenceClassification']);
  assert.deepEqual(configFromHF(hf, 'c.json'), {
    config: { ...MINI, hfExtra: { bos_token_id: 0, n_inner: null } },
    head: 'score',
  });
  assert.throws(
    () => configFromHF({ ...hf, n_head: 3 }, 'c.json'),
    /c\.json: nEmbd \(8\) must be divisible by nHead \(3\)/,
  );
  assert.throws(
    () => configFromHF({ ...hf, model_type: 'mistral' }, 'c.json'),
    /c\.json: model_type "mistral" is not supported/,
  );
  assert.throws(
    () => configFromHF({ ...hf, activation_function: 'relu' }, 'c.json'),
    /c\.json: activation_function = "relu" is not supported/,
  );
});

test('a checkpoint with trainer and optimizer state reloads bit-exactly', () => {
  const rng = new Rng(1);
  const params = randomParams(MINI, rng);
  params.get('wpe.weight')!.data[0] = -0;
  const optimizerState = randomOptimizerState(params, rng);
  optimizerState.expAvg.get('wte.weight')!.data[0] = NaN;
  const trainerState = { step: 7, epoch: 1.25, seed: 42, rng: { s: 123456789 }, metrics: { loss: 2.5, kl: 0.01 } };
  const dir = freshDir();
  saveCheckpoint(dir, { config: MINI, params, trainerState, optimizerState });

  const loaded = loadCheckpoint(dir);
  assert.deepEqual(loaded.config, MINI);
  assert.equal(loaded.head, 'lm');
  assertSameTensors(loaded.params, params);
  assert.deepEqual([...loaded.params.keys()], [...paramShapes(MINI).keys()]);
  assert.deepEqual(loaded.trainerState, trainerState);
  assert.equal(loaded.optimizerState!.step, 7);
  assertSameTensors(loaded.optimizerState!.expAvg, optimizerState.expAvg);
  assertSameTensors(loaded.optimizerState!.expAvgSq, optimizerState.expAvgSq);

  // What a PyTorch user sees: HF config keys and HF's names, trunk under "transformer.".
  const hf = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(hf.model_type, 'gpt2');
  assert.deepEqual(hf.architectures, ['GPT2LMHeadModel']);
  assert.equal(hf.n_ctx, 16);
  const file = readSafetensors(path.join(dir, 'model.safetensors'));
  assert.deepEqual(file.metadata, { format: 'pt' });
  assert.ok(file.tensors.has('transformer.h.1.mlp.c_proj.weight'));
  assert.ok(!file.tensors.has('lm_head.weight'));
});

test('reward models and untied LM heads round-trip', () => {
  const rng = new Rng(2);
  const reward = randomParams(MINI, rng, 'score');
  reward.set('score.bias', f32([1], [0.5]));
  const rewardDir = freshDir();
  saveCheckpoint(rewardDir, { config: MINI, params: reward });
  const loadedReward = loadCheckpoint(rewardDir);
  assert.equal(loadedReward.head, 'score');
  assertSameTensors(loadedReward.params, reward);
  assert.equal(loadedReward.trainerState, undefined);
  assert.equal(loadedReward.optimizerState, undefined);

  const untied = { ...MINI, tiedHead: false };
  const lm = randomParams(untied, rng);
  const lmDir = freshDir();
  saveCheckpoint(lmDir, { config: untied, params: lm });
  const loadedLm = loadCheckpoint(lmDir);
  assert.equal(loadedLm.config.tiedHead, false);
  assertSameTensors(loadedLm.params, lm);
});

test('saveCheckpoint rejects bad input before touching the disk', () => {
  const rng = new Rng(3);
  const params = randomParams(MINI, rng);
  const dir = freshDir();
  const missing = new Map(params);
  missing.delete('h.1.ln_2.bias');
  assert.throws(
    () => saveCheckpoint(dir, { config: MINI, params: missing }),
    /missing tensor "h\.1\.ln_2\.bias" \(expected shape \[8\]\)/,
  );
  const opt = randomOptimizerState(params, rng);
  opt.expAvgSq.delete('wte.weight');
  assert.throws(
    () => saveCheckpoint(dir, { config: MINI, params, optimizerState: opt }),
    /"wte\.weight" needs both exp_avg and exp_avg_sq/,
  );
  assert.throws(
    () => saveCheckpoint(dir, { config: MINI, params, trainerState: { optimizer_step: 1 } }),
    /reserved key "optimizer_step"/,
  );
  const diverged = new Map(params);
  const fc = params.get('h.0.mlp.c_fc.weight')!;
  diverged.set('h.0.mlp.c_fc.weight', {
    ...fc,
    data: (fc.data as Float32Array).map((x, i) => (i === 9 ? -Infinity : x)),
  });
  assert.throws(
    () => saveCheckpoint(dir, { config: MINI, params: diverged }),
    /tensor "h\.0\.mlp\.c_fc\.weight" holds -Infinity; the weights are not finite/,
  );
  assert.throws(
    () =>
      saveMultiModelCheckpoint(dir, { policy: { config: MINI, params }, value: { config: MINI, params: diverged } }),
    /d\d+\/value\): tensor "h\.0\.mlp\.c_fc\.weight" holds -Infinity/,
  );
  assert.ok(!fs.existsSync(dir));

  const notACheckpoint = freshDir();
  fs.mkdirSync(notACheckpoint);
  fs.writeFileSync(path.join(notACheckpoint, 'notes.txt'), 'keep me');
  assert.throws(
    () => saveCheckpoint(notACheckpoint, { config: MINI, params }),
    /is not a checkpoint \(no config\.json\); refusing to replace it/,
  );
  assert.equal(fs.readFileSync(path.join(notACheckpoint, 'notes.txt'), 'utf8'), 'keep me');
});

/** A Hugging Face-style GPT-2 directory: "transformer." names, mask buffers, extra config keys. */
function writeHFDir(dir: string, tensors: Map<string, NamedTensor>, configExtra: Record<string, unknown> = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  const config = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: 64,
    n_positions: 16,
    n_ctx: 16,
    n_embd: 8,
    n_layer: 2,
    n_head: 2,
    n_inner: null,
    resid_pdrop: 0.1,
    bos_token_id: 0,
    task_specific_params: { 'text-generation': { do_sample: true } },
    ...configExtra,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors));
}

function hfTensors(params: Map<string, NamedTensor>): Map<string, NamedTensor> {
  const tensors = new Map(
    [...params].map(([name, t]) => [name === 'lm_head.weight' ? name : `transformer.${name}`, t]),
  );
  for (let i = 0; i < MINI.nLayer; i++) {
    const mask = new Float32Array(16 * 16).map((_, k) => (k % 16 <= Math.floor(k / 16) ? 1 : 0));
    tensors.set(`transformer.h.${i}.attn.bias`, { dtype: 'float32', shape: [1, 1, 16, 16], data: mask });
    tensors.set(`transformer.h.${i}.attn.masked_bias`, f32([], [-1e4]));
  }
  return tensors;
}

test('imports a Hugging Face GPT-2 directory with an untied head', () => {
  const untied = { ...MINI, tiedHead: false };
  const params = randomParams(untied, new Rng(4));
  const dir = freshDir();
  writeHFDir(dir, hfTensors(params), { tie_word_embeddings: false });

  const loaded = loadCheckpoint(dir);
  assert.equal(loaded.config.tiedHead, false);
  assert.deepEqual(loaded.config.hfExtra, {
    n_inner: null,
    resid_pdrop: 0.1,
    bos_token_id: 0,
    task_specific_params: { 'text-generation': { do_sample: true } },
  });
  assertSameTensors(loaded.params, params);

  // Saving keeps the keys we do not use.
  const copy = freshDir();
  saveCheckpoint(copy, loaded);
  const hf = JSON.parse(fs.readFileSync(path.join(copy, 'config.json'), 'utf8'));
  assert.deepEqual(hf.task_specific_params, { 'text-generation': { do_sample: true } });
  assertSameTensors(loadCheckpoint(copy).params, params);
});

test('imports tied heads, converts to float32, and names the tensor at fault', () => {
  const params = randomParams(MINI, new Rng(5));
  const tied = hfTensors(params);
  tied.set('lm_head.weight', params.get('wte.weight')!);
  tied.set('transformer.ln_f.bias', {
    dtype: 'float64',
    shape: [8],
    data: Float64Array.from(params.get('ln_f.bias')!.data as Float32Array),
  });
  const dir = freshDir();
  writeHFDir(dir, tied);
  const loaded = loadCheckpoint(dir);
  assert.equal(loaded.config.tiedHead, true);
  assertSameTensors(loaded.params, params);

  const modelFile = path.join(dir, 'model.safetensors');
  const rewrite = (edit: (t: Map<string, NamedTensor>) => void) => {
    const tensors = hfTensors(params);
    edit(tensors);
    fs.writeFileSync(modelFile, encodeSafetensors(tensors));
  };
  rewrite((t) => t.delete('transformer.h.0.attn.c_proj.bias'));
  assert.throws(
    () => loadCheckpoint(dir),
    (err: Error) => err.message.includes(modelFile) && err.message.includes('missing tensor "h.0.attn.c_proj.bias"'),
  );
  rewrite((t) => t.set('transformer.h.0.mlp.c_fc.weight', randomTensor(new Rng(6), [32, 8])));
  assert.throws(() => loadCheckpoint(dir), /tensor "h\.0\.mlp\.c_fc\.weight" has shape \[32,8\], expected \[8,32\]/);
  rewrite((t) => t.set('transformer.h.9.ln_1.weight', f32([8], new Array(8).fill(1))));
  assert.throws(() => loadCheckpoint(dir), /unexpected tensors "h\.9\.ln_1\.weight"/);
  rewrite((t) => t.set('transformer.wpe.weight', { dtype: 'int32', shape: [16, 8], data: new Int32Array(128) }));
  assert.throws(
    () => loadCheckpoint(dir),
    /tensor "transformer\.wpe\.weight" is int32; weights must be floating point/,
  );
});

/** What a crash part-way through saveCheckpoint leaves: `<dir>.partial` and/or `<dir>.previous`. */
function checkpointAt(dir: string, seed: number): Map<string, NamedTensor> {
  const params = randomParams(MINI, new Rng(seed));
  saveCheckpoint(dir, { config: MINI, params, trainerState: { step: seed } });
  return params;
}

test('a crash at any point of a save leaves a loadable checkpoint, and the next save recovers', () => {
  const leftovers = (dir: string) => ['.partial', '.previous'].filter((s) => fs.existsSync(dir + s));

  // Crash while writing the new checkpoint: only a half-written partial.
  const a = freshDir();
  const paramsA = checkpointAt(a, 10);
  fs.mkdirSync(`${a}.partial`);
  fs.writeFileSync(`${a}.partial/config.json`, '{"model_ty');
  assertSameTensors(loadCheckpoint(a).params, paramsA);
  const paramsA2 = checkpointAt(a, 11);
  assertSameTensors(loadCheckpoint(a).params, paramsA2);
  assert.deepEqual(leftovers(a), []);

  // Crash between the renames: old parked as previous, complete new one still at partial.
  const b = freshDir();
  checkpointAt(b, 20);
  const paramsB2 = checkpointAt(`${b}.staging`, 21);
  fs.renameSync(b, `${b}.previous`);
  fs.renameSync(`${b}.staging`, `${b}.partial`);
  assertSameTensors(loadCheckpoint(b).params, paramsB2);
  assert.deepEqual(leftovers(b), ['.partial', '.previous'], 'loading does not change the disk');
  const paramsB3 = checkpointAt(b, 22);
  assertSameTensors(loadCheckpoint(b).params, paramsB3);
  assert.deepEqual(leftovers(b), []);

  // Crash before the old one was deleted.
  const c = freshDir();
  checkpointAt(`${c}.staging`, 30);
  fs.renameSync(`${c}.staging`, `${c}.previous`);
  const paramsC2 = checkpointAt(c, 31);
  assert.deepEqual(leftovers(c), []);
  assertSameTensors(loadCheckpoint(c).params, paramsC2);

  // Only the parked old one survived (its replacement never got written).
  const d = freshDir();
  const paramsD = checkpointAt(`${d}.staging`, 40);
  fs.renameSync(`${d}.staging`, `${d}.previous`);
  assertSameTensors(loadCheckpoint(d).params, paramsD);
  assert.deepEqual(loadCheckpoint(d).trainerState, { step: 40 });
  checkpointAt(d, 41);
  assert.deepEqual(loadCheckpoint(d).trainerState, { step: 41 });
  assert.deepEqual(leftovers(d), []);

  assert.throws(() => loadCheckpoint(freshDir()), /no checkpoint at /);
});

const TORCH_SUMS = `
import json, struct, sys, torch
DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64}
with open(sys.argv[1], "rb") as f:
    raw = f.read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
header.pop("__metadata__", None)
out = {}
for name, info in header.items():
    begin, end = info["data_offsets"]
    t = torch.frombuffer(bytearray(raw[8 + n + begin:8 + n + end]), dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    out[name] = {"shape": list(t.shape), "sum": t.double().sum().item()}
print(json.dumps(out))
`;

const PYTHON = '/usr/bin/python3';
const torchMissing = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0;

test(
  'PyTorch reads model.safetensors independently and agrees',
  { skip: torchMissing && `${PYTHON} cannot import torch` },
  (t) => {
    const params = randomParams({ ...MINI, tiedHead: false }, new Rng(7));
    const dir = freshDir();
    saveCheckpoint(dir, { config: { ...MINI, tiedHead: false }, params });
    const run = spawnSync(PYTHON, ['-c', TORCH_SUMS, path.join(dir, 'model.safetensors')], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const torchSums: Record<string, { shape: number[]; sum: number }> = JSON.parse(run.stdout);

    assert.equal(Object.keys(torchSums).length, params.size);
    for (const [name, p] of params) {
      const fileName = name === 'lm_head.weight' ? name : `transformer.${name}`;
      const fromTorch = torchSums[fileName];
      assert.ok(fromTorch, `torch did not see ${fileName}`);
      assert.deepEqual(fromTorch.shape, p.shape, fileName);
      const values = [...(p.data as Float32Array)];
      const sum = values.reduce((s, x) => s + x, 0);
      const scale = values.reduce((s, x) => s + Math.abs(x), 0);
      assert.ok(Math.abs(fromTorch.sum - sum) <= 1e-12 * scale, `${fileName}: torch sum ${fromTorch.sum}, ours ${sum}`);
    }
    const [name, s] = Object.entries(torchSums)[0];
    t.diagnostic(`${Object.keys(torchSums).length} tensors agree; e.g. ${name}: torch ${s.sum}`);
  },
);

/**
 * Checkpoint files as the Hub has them: bfloat16 and float16 weights, shards, generation_config.json,
 * tokenizer files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  loadCheckpoint,
  NonFiniteParamsError,
  saveCheckpoint,
  saveMultiModelCheckpoint,
} from '../../src/model/checkpoint';
import { incompleteCheckpoint } from '../../src/model/checkpoint-layout';
import { paramShapes } from '../../src/model/decoder';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../../src/model/half';
import { COMPANION_FILES } from '../../src/model/model-files';
import {
  encodeSafetensors,
  FloatDType,
  NamedTensor,
  numel,
  readSafetensors,
  writeSafetensors,
} from '../../src/model/safetensors';
import { Rng } from '../../src/util/rng';
import { MINI, scratchFolder } from '../helpers/checkpoints';

const { scratch, freshDir } = scratchFolder('checkpoint-io');

function randomParams(seed: number): Map<string, NamedTensor> {
  const rng = new Rng(seed);
  return new Map(
    [...paramShapes(MINI, { head: 'lm' })].map(([name, shape]) => [
      name,
      { dtype: 'float32', shape, data: Float32Array.from({ length: numel(shape) }, () => rng.normal()) },
    ]),
  );
}

const bits = (t: NamedTensor) => [...new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length)];

/** `params` as they come back from a 16-bit file: rounded to `dtype` and widened. */
function rounded(params: Map<string, NamedTensor>, dtype: 'bfloat16' | 'float16'): Map<string, NamedTensor> {
  const roundTrip = (x: Float32Array) =>
    dtype === 'bfloat16' ? bfloat16ToFloat32(float32ToBfloat16(x)) : float16ToFloat32(float32ToFloat16(x));
  return new Map([...params].map(([name, t]) => [name, { ...t, data: roundTrip(t.data as Float32Array) }]));
}

function assertSameParams(actual: Map<string, NamedTensor>, expected: Map<string, NamedTensor>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [name, t] of expected) assert.deepEqual(bits(actual.get(name)!), bits(t), name);
}

/** Each tensor's dtype as the file's header names it. */
function headerDtypes(file: string): Set<string> {
  return new Set(readSafetensors(file).stored.values());
}

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

const PYTHON = '/usr/bin/python3';
const torchMissing = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0;

/** Float32 bit patterns: the cases rounding turns on, then random ones over every sign, exponent and fraction. */
function testBits(): number[] {
  const edges = [
    0,
    0x80000000,
    0x7f800000,
    0xff800000,
    0x7fc00000,
    0xffc00001,
    0x7f800001, // ±0, ±inf, NaNs
    0x3f808000,
    0x3f818000,
    0x3f80c000, // bfloat16 ties to even (down, up) and above half
    0x7f7f7fff,
    0x7f7f8000,
    0xff7fffff, // bfloat16's overflow to infinity
    0x477fefff,
    0x477ff000,
    0x47800000, // float16's 65504 and overflow
    0x38800000,
    0x387fffff,
    0x33000000,
    0x33400000,
    0x337fffff,
    0x33800000,
    0x34400000, // float16 subnormals and their ties
    1,
    0x80000001,
    0x007fffff, // float32 subnormals
  ];
  const rng = new Rng(11);
  return [...edges, ...Array.from({ length: 20000 }, () => rng.int(2 ** 16) * 2 ** 16 + rng.int(2 ** 16))];
}

test(
  'bfloat16 and float16 convert to and from float32 exactly as PyTorch does',
  { skip: torchMissing && `${PYTHON} cannot import torch` },
  () => {
    const input = path.join(scratch, 'bits.json');
    const output = path.join(scratch, 'halves.safetensors');
    fs.writeFileSync(input, JSON.stringify({ bits: testBits() }));
    const run = spawnSync(PYTHON, ['bench/reference/half_dtypes.py', '--input', input, '--output', output], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    const torch = readSafetensors(output);
    assert.equal(torch.stored.get('bf16'), 'BF16');
    assert.equal(torch.stored.get('f16'), 'F16');
    const t = (name: string) => torch.tensors.get(name)!;

    // Reading: the 16-bit tensors come as float32, bit for bit what torch's .float() gives, NaN payloads included.
    assert.deepEqual(bits(t('bf16')), bits(t('bf16.f32')));
    assert.deepEqual(bits(t('f16')), bits(t('f16.f32')));

    // Writing: float32 stored as each 16-bit dtype reads back as torch rounded it. PyTorch's bfloat16 NaNs
    // differ between its own code paths, so there only NaN-ness is compared.
    const values = new Map([['x', t('f32')]]);
    for (const [dtype, name] of [
      ['float16', 'f16'],
      ['bfloat16', 'bf16'],
    ] as const) {
      const file = path.join(scratch, `${name}.safetensors`);
      writeSafetensors(file, values, undefined, dtype);
      const ours = readSafetensors(file);
      assert.equal(ours.stored.get('x'), name.toUpperCase());
      const [got, want] = [bits(ours.tensors.get('x')!), bits(t(name))];
      const isNaN = (b: number) => (b & 0x7fffffff) > 0x7f800000;
      const differ = got.flatMap((b, i) =>
        b === want[i] || (dtype === 'bfloat16' && isNaN(b) && isNaN(want[i])) ? [] : [i],
      );
      assert.deepEqual(
        differ.slice(0, 5).map((i) => [bits(t('f32'))[i].toString(16), got[i].toString(16), want[i].toString(16)]),
        [],
        `${dtype}: ${differ.length} values differ`,
      );
    }
  },
);

test('a model saved in bfloat16 or float16 reloads rounded, remembers its dtype, and saves in it again', () => {
  const params = randomParams(1);
  for (const dtype of ['bfloat16', 'float16'] as const) {
    const dir = freshDir();
    saveCheckpoint(dir, { config: MINI, params, dtype });
    assert.deepEqual(
      headerDtypes(path.join(dir, 'model.safetensors')),
      new Set([dtype === 'bfloat16' ? 'BF16' : 'F16']),
    );
    assert.equal(readJson(path.join(dir, 'config.json')).torch_dtype, dtype);
    const loaded = loadCheckpoint(dir);
    assert.equal(loaded.dtype, dtype);
    assert.equal(loaded.config.hfExtra, undefined, "torch_dtype is the checkpoint's dtype, not a key carried along");
    assertSameParams(loaded.params, rounded(params, dtype));

    const again = freshDir();
    saveCheckpoint(again, loaded);
    assert.ok(
      fs
        .readFileSync(path.join(again, 'model.safetensors'))
        .equals(fs.readFileSync(path.join(dir, 'model.safetensors'))),
    );
    const widened = freshDir();
    saveCheckpoint(widened, { ...loaded, dtype: 'float32' });
    assert.deepEqual(headerDtypes(path.join(widened, 'model.safetensors')), new Set(['F32']));
    assert.equal(readJson(path.join(widened, 'config.json')).torch_dtype, 'float32');
  }
});

test("storeFloat32 keeps the weights exact while config.json names the model's dtype", () => {
  const params = randomParams(2);
  const dir = freshDir();
  saveCheckpoint(dir, { config: MINI, params, dtype: 'bfloat16', storeFloat32: true });
  assert.deepEqual(headerDtypes(path.join(dir, 'model.safetensors')), new Set(['F32']));
  const loaded = loadCheckpoint(dir);
  assert.equal(loaded.dtype, 'bfloat16');
  assertSameParams(loaded.params, params);
});

test('a 16-bit save refuses a weight the dtype cannot hold, naming the tensor', () => {
  const params = randomParams(3);
  (params.get('h.1.mlp.c_fc.weight')!.data as Float32Array)[5] = 70000;
  assert.throws(
    () => saveCheckpoint(freshDir(), { config: MINI, params, dtype: 'float16' }),
    /tensor "h\.1\.mlp\.c_fc\.weight" holds 70000, beyond float16's range \(±65504\); save the model in bfloat16 or float32/,
  );
  const dir = freshDir();
  saveCheckpoint(dir, { config: MINI, params, dtype: 'bfloat16' });
  assert.equal((loadCheckpoint(dir).params.get('h.1.mlp.c_fc.weight')!.data as Float32Array)[5], 70144);
});

/** A Hugging Face GPT-2 folder: config.json, and the weights under HF names as `write` puts them. */
function hfFolder(
  params: Map<string, NamedTensor>,
  write: (dir: string, tensors: Map<string, NamedTensor>) => void,
  config: object = {},
): string {
  const dir = freshDir();
  fs.mkdirSync(dir);
  const hfConfig = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: 64,
    n_positions: 16,
    n_embd: 8,
    n_layer: 2,
    n_head: 2,
    ...config,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hfConfig));
  write(dir, new Map([...params].map(([name, t]) => [`transformer.${name}`, t])));
  return dir;
}

const singleFile = (floats: FloatDType) => (dir: string, tensors: Map<string, NamedTensor>) =>
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' }, floats);

test('weights that are not finite once widened from BF16 or F16 are refused, naming the tensor', () => {
  for (const [dtype, value] of [
    ['bfloat16', Infinity],
    ['float16', 1e6],
  ] as const) {
    const params = randomParams(4);
    (params.get('ln_f.weight')!.data as Float32Array)[2] = value; // 1e6 is beyond float16: stored as infinity
    const dir = hfFolder(params, singleFile(dtype));
    assert.throws(
      () => loadCheckpoint(dir),
      (e: Error) =>
        e instanceof NonFiniteParamsError &&
        e.tensor === 'ln_f.weight' &&
        e.value === Infinity &&
        e.message.includes(path.join(dir, 'model.safetensors')),
    );
  }
});

/** Writes `tensors` as two shards and their index, the first shard holding the first `split` tensors. */
function twoShards(split: number, floats: FloatDType = 'bfloat16') {
  return (dir: string, tensors: Map<string, NamedTensor>) => {
    const entries = [...tensors];
    const shards = [entries.slice(0, split), entries.slice(split)];
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(path.join(dir, file), new Map(shard), { format: 'pt' }, floats);
      for (const [name] of shard) weightMap[name] = file;
    });
    fs.writeFileSync(
      path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
    );
  };
}

test('a sharded checkpoint loads through model.safetensors.index.json; a missing shard or tensor is named', () => {
  const params = randomParams(5);
  const dir = hfFolder(params, twoShards(10));
  const loaded = loadCheckpoint(dir);
  assert.equal(loaded.dtype, 'bfloat16', 'no torch_dtype in config.json: the dtype the weights are stored in');
  assertSameParams(loaded.params, rounded(params, 'bfloat16'));
  assert.equal(incompleteCheckpoint(dir, []), undefined);

  const index = path.join(dir, 'model.safetensors.index.json');
  const map = readJson(index);
  const moved = Object.keys(map.weight_map)[0];
  fs.writeFileSync(
    index,
    JSON.stringify({ weight_map: { ...map.weight_map, [moved]: 'model-00002-of-00002.safetensors' } }),
  );
  assert.throws(
    () => loadCheckpoint(dir),
    new RegExp(
      `model-00001-of-00002\\.safetensors: tensor "${moved.replace(/\./g, '\\.')}" is not mapped to this shard`,
    ),
  );
  fs.writeFileSync(index, JSON.stringify({ weight_map: { ...map.weight_map, [moved]: '../elsewhere.safetensors' } }));
  assert.throws(
    () => loadCheckpoint(dir),
    /model\.safetensors\.index\.json: weight_map\[".*"\] must name a \.safetensors file in the same folder/,
  );
  fs.writeFileSync(
    index,
    JSON.stringify({ weight_map: { ...map.weight_map, 'transformer.extra': 'model-00001-of-00002.safetensors' } }),
  );
  assert.throws(
    () => loadCheckpoint(dir),
    /index\.json: tensor "transformer\.extra" is mapped to "model-00001-of-00002\.safetensors", which does not hold it/,
  );
  fs.writeFileSync(index, JSON.stringify(map));
  fs.rmSync(path.join(dir, 'model-00002-of-00002.safetensors'));
  assert.throws(
    () => loadCheckpoint(dir),
    (e: Error) => e.message.startsWith(`${index}: shard "model-00002-of-00002.safetensors" is missing`),
  );
});

test('weights past maxShardSize are saved in shards with an index, and load back', () => {
  const params = randomParams(6);
  const dir = freshDir();
  saveCheckpoint(dir, { config: MINI, params, dtype: 'float16', maxShardSize: 1500 });
  const files = fs.readdirSync(dir).sort();
  assert.ok(!files.includes('model.safetensors'));
  const index = readJson(path.join(dir, 'model.safetensors.index.json'));
  const shards = [...new Set(Object.values(index.weight_map) as string[])].sort();
  assert.ok(
    shards.length >= 2 && shards.every((s, i) => s === `model-0000${i + 1}-of-0000${shards.length}.safetensors`),
    shards.join(),
  );
  assert.deepEqual(files, ['config.json', 'model.safetensors.index.json', ...shards].sort());
  for (const shard of shards)
    assert.ok(
      fs.statSync(path.join(dir, shard)).size <= 1500 + 1000,
      `${shard} is about the shard size plus its header`,
    );
  const stored = [...params.values()].reduce((n, t) => n + 2 * t.data.length, 0);
  assert.equal(index.metadata.total_size, stored);
  assertSameParams(loadCheckpoint(dir).params, rounded(params, 'float16'));
});

test('a folder without loadable weights or config gets an error naming what is missing', () => {
  const dir = freshDir();
  fs.mkdirSync(dir);
  assert.throws(
    () => loadCheckpoint(dir),
    new RegExp(`${dir.replace(/[.\\]/g, '\\$&')}: no config\\.json, so it is not a model folder`),
  );
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({ model_type: 'gpt2', vocab_size: 64, n_positions: 16, n_embd: 8, n_layer: 2, n_head: 2 }),
  );
  fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), 'pickle');
  assert.throws(
    () => loadCheckpoint(dir),
    /no model\.safetensors nor model\.safetensors\.index\.json; it has pytorch_model\.bin \(PyTorch pickle weights\), which is not supported/,
  );
});

test('generation_config.json gives the eos ids (one or a list), else config.json; bad ids are named', () => {
  const params = randomParams(7);
  const dir = hfFolder(params, singleFile('float32'), { eos_token_id: 3, bos_token_id: 1 });
  assert.deepEqual(loadCheckpoint(dir).generation, { eosTokenIds: [3], bosTokenId: 1, padTokenId: undefined });
  const file = path.join(dir, 'generation_config.json');
  fs.writeFileSync(file, JSON.stringify({ bos_token_id: 1, eos_token_id: [5, 2], pad_token_id: 0, do_sample: true }));
  assert.deepEqual(loadCheckpoint(dir).generation, { eosTokenIds: [5, 2], bosTokenId: 1, padTokenId: 0 });
  fs.writeFileSync(file, JSON.stringify({ eos_token_id: [5, '2'] }));
  assert.throws(
    () => loadCheckpoint(dir),
    new RegExp(`generation_config\\.json: eos_token_id must be a token id or a list of token ids, got \\[5,"2"\\]`),
  );
  fs.writeFileSync(file, JSON.stringify({ pad_token_id: [0] }));
  assert.throws(() => loadCheckpoint(dir), /generation_config\.json: pad_token_id must be one token id, got \[0\]/);
});

test("a saved model gets the source model's tokenizer and generation files, in every model folder of a checkpoint", () => {
  const params = randomParams(8);
  const source = hfFolder(params, singleFile('bfloat16'));
  const companions = COMPANION_FILES.filter((f) => f !== 'tokenizer.model'); // one the source lacks
  const content = (file: string) => JSON.stringify({ [file]: 'of the source' }); // JSON, as generation_config.json is read
  for (const file of companions) fs.writeFileSync(path.join(source, file), content(file));
  const loaded = loadCheckpoint(source);
  assert.equal(loaded.source, source);

  const single = freshDir();
  saveCheckpoint(single, loaded);
  const multi = freshDir();
  saveMultiModelCheckpoint(multi, { policy: loaded, value: { config: MINI, params, source } });
  for (const dir of [single, path.join(multi, 'policy'), path.join(multi, 'value')]) {
    for (const file of companions)
      assert.equal(fs.readFileSync(path.join(dir, file), 'utf8'), content(file), `${dir}: ${file}`);
    assert.ok(!fs.existsSync(path.join(dir, 'tokenizer.model')));
  }
  const none = freshDir();
  saveCheckpoint(none, { config: MINI, params });
  assert.deepEqual(fs.readdirSync(none).sort(), ['config.json', 'model.safetensors']);
});

test('encodeSafetensors stores float32 as the 16-bit dtype asked for and leaves other dtypes alone', () => {
  const tensors = new Map<string, NamedTensor>([
    ['w', { dtype: 'float32', shape: [3], data: Float32Array.from([1, 1 + 2 ** -9, -65504]) }],
    ['ids', { dtype: 'int64', shape: [1], data: BigInt64Array.from([7n]) }],
  ]);
  const buf = encodeSafetensors(tensors, undefined, 'float16');
  const header = JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString());
  assert.equal(header.w.dtype, 'F16');
  assert.equal(header.ids.dtype, 'I64');
  assert.deepEqual(header.w.data_offsets[1] - header.w.data_offsets[0], 6);
});

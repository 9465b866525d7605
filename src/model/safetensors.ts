/**
 * The safetensors file format, the one Hugging Face and PyTorch users share weights in:
 * an 8-byte little-endian header length, a UTF-8 JSON header naming each tensor's dtype, shape
 * and byte range, then the raw little-endian tensor bytes.
 */
import * as fs from 'fs';
import { writeFileAtomic } from '../util/files';
import { isPlainObject } from '../util/objects';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from './half';

export type TensorDType = 'float32' | 'float64' | 'int32' | 'int64';
/** The dtypes weights are stored in, by PyTorch's names (config.json's torch_dtype). */
export type FloatDType = 'float32' | 'bfloat16' | 'float16';
export const FLOAT_DTYPES: readonly FloatDType[] = ['float32', 'bfloat16', 'float16'];
export type TensorArray = Float32Array | Float64Array | Int32Array | BigInt64Array;

export interface NamedTensor {
  dtype: TensorDType;
  shape: number[];
  data: TensorArray;
}

export interface SafetensorsContents {
  /** Floating-point tensors come as float32, whatever their dtype in the file. */
  tensors: Map<string, NamedTensor>;
  /** Each tensor's dtype in the file, as its header names it ("F32", "BF16", "F16"...). */
  stored: Map<string, string>;
  metadata: Record<string, string>;
}

// Typed arrays use the host's byte order; the format is little-endian.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('safetensors: big-endian hosts are not supported');
}

const WRITE_FORMATS = {
  float32: { code: 'F32', array: Float32Array },
  float64: { code: 'F64', array: Float64Array },
  int32: { code: 'I32', array: Int32Array },
  int64: { code: 'I64', array: BigInt64Array },
} as const;

/** Each readable dtype code: element size, and how to turn its bytes (own buffer, offset 0) into a tensor. */
const READ_FORMATS: Record<string, { size: number; decode: (b: Uint8Array) => Pick<NamedTensor, 'dtype' | 'data'> }> = {
  F32: { size: 4, decode: (b) => ({ dtype: 'float32', data: new Float32Array(b.buffer) }) },
  F64: { size: 8, decode: (b) => ({ dtype: 'float64', data: new Float64Array(b.buffer) }) },
  I32: { size: 4, decode: (b) => ({ dtype: 'int32', data: new Int32Array(b.buffer) }) },
  I64: { size: 8, decode: (b) => ({ dtype: 'int64', data: new BigInt64Array(b.buffer) }) },
  F16: { size: 2, decode: (b) => ({ dtype: 'float32', data: float16ToFloat32(new Uint16Array(b.buffer)) }) },
  BF16: { size: 2, decode: (b) => ({ dtype: 'float32', data: bfloat16ToFloat32(new Uint16Array(b.buffer)) }) },
};

/** The header codes of the 16-bit dtypes float32 tensors can be stored in, and their narrowing. */
const HALF_FORMATS = {
  bfloat16: { code: 'BF16', narrow: float32ToBfloat16 },
  float16: { code: 'F16', narrow: float32ToFloat16 },
} as const;

export function numel(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function checkTensorForWrite(name: string, t: NamedTensor, file: string): void {
  const where = `${file}: tensor "${name}"`;
  if (name === '' || name === '__metadata__') throw new Error(`${where}: reserved or empty name`);
  const format = WRITE_FORMATS[t.dtype];
  if (!format) throw new Error(`${where}: unsupported dtype ${String(t.dtype)}`);
  if (!(t.data instanceof format.array))
    throw new Error(`${where}: data is not a ${format.array.name} for dtype ${t.dtype}`);
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${where}: bad shape [${t.shape}]`);
  if (t.data.length !== numel(t.shape)) {
    throw new Error(`${where}: shape [${t.shape}] needs ${numel(t.shape)} values, data has ${t.data.length}`);
  }
}

/** A tensor as the file holds it: its header dtype and bytes, float32 narrowed to `floats`. */
function storedForm(t: NamedTensor, floats: FloatDType): { code: string; bytes: Uint8Array } {
  if (t.dtype === 'float32' && floats !== 'float32') {
    const { code, narrow } = HALF_FORMATS[floats];
    return { code, bytes: new Uint8Array(narrow(t.data as Float32Array).buffer) };
  }
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { code: WRITE_FORMATS[t.dtype].code, bytes };
}

/** The bytes `tensors` take in a file that stores float32 as `floats`. */
export function storedSize(tensors: Iterable<NamedTensor>, floats: FloatDType = 'float32'): number {
  let size = 0;
  for (const t of tensors)
    size += t.dtype === 'float32' && floats !== 'float32' ? 2 * t.data.length : t.data.byteLength;
  return size;
}

/** The file as a list of byte chunks: length prefix, padded header, then each tensor's bytes. */
function fileChunks(
  tensors: Map<string, NamedTensor>,
  metadata: Record<string, string> | undefined,
  file: string,
  floats: FloatDType,
): Uint8Array[] {
  for (const [name, t] of tensors) checkTensorForWrite(name, t, file);
  const stored = [...tensors].map(([name, t]) => ({ name, shape: t.shape, ...storedForm(t, floats) }));
  // Larger elements first keeps every tensor naturally aligned in the file; names make the order stable.
  const size = (s: { code: string }) => READ_FORMATS[s.code].size;
  stored.sort((a, b) => size(b) - size(a) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`${file}: metadata "${k}" must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const { name, shape, code, bytes } of stored) {
    header[name] = { dtype: code, shape, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / 8) * 8, ' '); // spaces keep the header valid JSON
  json.copy(padded);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(padded.length));
  return [prefix, padded, ...stored.map((s) => s.bytes)];
}

/** The file's bytes; float32 tensors are stored as `floats` (default float32). */
export function encodeSafetensors(
  tensors: Map<string, NamedTensor>,
  metadata?: Record<string, string>,
  floats: FloatDType = 'float32',
): Buffer {
  return Buffer.concat(fileChunks(tensors, metadata, '<buffer>', floats));
}

/**
 * Writes atomically: a temp file in the same directory, fsynced, then renamed over `file`. Float32
 * tensors are stored as `floats` (default float32).
 */
export function writeSafetensors(
  file: string,
  tensors: Map<string, NamedTensor>,
  metadata?: Record<string, string>,
  floats: FloatDType = 'float32',
): void {
  writeFileAtomic(file, fileChunks(tensors, metadata, file, floats));
}

/** Random access to a file's bytes: each call returns a fresh copy with its own buffer. */
type ByteSource = { size: number; read: (begin: number, length: number) => Uint8Array };

export function decodeSafetensors(buf: Uint8Array, nameForErrors: string): SafetensorsContents {
  // Copy (not a view: Buffer#slice shares memory) so every tensor gets its own aligned buffer.
  const source = {
    size: buf.length,
    read: (begin: number, length: number) => new Uint8Array(buf.subarray(begin, begin + length)),
  };
  return decode(source, nameForErrors);
}

/** Reads tensor by tensor straight from the file, so memory holds one copy of the weights. */
export function readSafetensors(file: string): SafetensorsContents {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const read = (begin: number, length: number): Uint8Array => {
      const bytes = new Uint8Array(length);
      for (let done = 0; done < length;) {
        const n = fs.readSync(fd, bytes, done, length - done, begin + done);
        if (n === 0) throw new Error(`${file}: file ended early (it changed while being read?)`);
        done += n;
      }
      return bytes;
    };
    return decode({ size, read }, file);
  } finally {
    fs.closeSync(fd);
  }
}

function decode(source: ByteSource, file: string): SafetensorsContents {
  const header = readHeader(source, file);
  const dataStart = 8 + header.length;
  const dataSize = source.size - dataStart;
  const entries = Object.entries(header.json).filter(([name]) => name !== '__metadata__');
  const ranges = entries.map(([name, info]) => checkEntry(name, info, dataSize, file));
  checkNoOverlap(ranges, file);
  const tensors = new Map<string, NamedTensor>();
  for (const r of ranges) {
    const bytes = source.read(dataStart + r.begin, r.end - r.begin);
    tensors.set(r.name, { shape: r.shape, ...READ_FORMATS[r.dtype].decode(bytes) });
  }
  const stored = new Map(ranges.map((r) => [r.name, r.dtype]));
  return { tensors, stored, metadata: readMetadata(header.json.__metadata__, file) };
}

function readHeader(source: ByteSource, file: string): { length: number; json: Record<string, unknown> } {
  if (source.size < 8) throw new Error(`${file}: not a safetensors file (only ${source.size} bytes)`);
  const length = Buffer.from(source.read(0, 8)).readBigUInt64LE(0);
  if (length > BigInt(source.size - 8)) {
    throw new Error(`${file}: header length ${length} is beyond the end of the ${source.size}-byte file`);
  }
  const text = Buffer.from(source.read(8, Number(length))).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(json)) throw new Error(`${file}: header must be a JSON object`);
  return { length: Number(length), json };
}

type Range = { name: string; dtype: string; shape: number[]; begin: number; end: number };

function checkEntry(name: string, info: unknown, dataSize: number, file: string): Range {
  const where = `${file}: tensor "${name}"`;
  if (!isPlainObject(info)) throw new Error(`${where}: header entry must be an object`);
  const { dtype, shape, data_offsets: offsets } = info;
  if (typeof dtype !== 'string' || !(dtype in READ_FORMATS)) {
    throw new Error(
      `${where}: unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(READ_FORMATS).join(', ')})`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${where}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw new Error(`${where}: data_offsets must be [begin, end], got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as number[];
  if (begin > end || end > dataSize) {
    throw new Error(
      `${where}: data_offsets [${begin}, ${end}] fall outside the ${dataSize} data bytes (truncated file?)`,
    );
  }
  const expected = numel(shape) * READ_FORMATS[dtype].size;
  if (end - begin !== expected) {
    throw new Error(`${where}: ${dtype} [${shape}] needs ${expected} bytes, data_offsets span ${end - begin}`);
  }
  return { name, dtype, shape: [...shape], begin, end };
}

function checkNoOverlap(ranges: Range[], file: string): void {
  const sorted = [...ranges].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    const [prev, cur] = [sorted[i - 1], sorted[i]];
    if (cur.begin < prev.end) {
      throw new Error(`${file}: tensor "${cur.name}" overlaps tensor "${prev.name}" in the data section`);
    }
  }
}

function readMetadata(value: unknown, file: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw new Error(`${file}: __metadata__ must map strings to strings`);
  }
  return value as Record<string, string>;
}

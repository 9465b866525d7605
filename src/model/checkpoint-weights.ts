/**
 * A model folder's weights, as transformers saves them: one model.safetensors, or for a large model
 * shards ("model-00001-of-00003.safetensors"...) and model.safetensors.index.json, whose weight_map
 * names the shard of each tensor. Shards are read one at a time, tensor by tensor, so memory holds
 * one float32 copy of the weights.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CHECKPOINT_FILES as FILES } from './checkpoint-layout';
import { FloatDType, NamedTensor, readSafetensors, storedSize, writeSafetensors } from './safetensors';
import { readJsonObjectFile, writeJsonFile } from '../util/json-files';
import { isPlainObject } from '../util/objects';

/** transformers' default largest shard, "5GB". */
export const MAX_SHARD_SIZE = 5e9;

export interface StoredWeights {
  /** float32 (or integer) tensors under the file's names. */
  tensors: Map<string, NamedTensor>;
  /** Each tensor's dtype in its file ("F32", "BF16", "F16"...). */
  stored: Map<string, string>;
  /** What errors about the weights name: model.safetensors or the index. */
  file: string;
}

/** Files of other formats that hold weights we cannot read, and what they are. */
const UNSUPPORTED = {
  'pytorch_model.bin': 'PyTorch pickle',
  'pytorch_model.bin.index.json': 'sharded PyTorch pickle',
  'tf_model.h5': 'TensorFlow',
  'flax_model.msgpack': 'Flax',
};

export function readWeights(dir: string): StoredWeights {
  const single = path.join(dir, FILES.model);
  if (fs.existsSync(single)) return { ...readSafetensors(single), file: single };
  const index = path.join(dir, FILES.modelIndex);
  if (fs.existsSync(index)) return readShards(dir, index);
  const other = Object.entries(UNSUPPORTED).find(([file]) => fs.existsSync(path.join(dir, file)));
  const found = other
    ? `; it has ${other[0]} (${other[1]} weights), which is not supported: save the model with safetensors`
    : '';
  throw new Error(`${dir}: no ${FILES.model} nor ${FILES.modelIndex}${found}`);
}

function readShards(dir: string, index: string): StoredWeights {
  const weightMap = readWeightMap(index);
  const tensors = new Map<string, NamedTensor>();
  const stored = new Map<string, string>();
  for (const shard of new Set(weightMap.values())) {
    const file = path.join(dir, shard);
    if (!fs.existsSync(file)) {
      const example = [...weightMap].find(([, s]) => s === shard)![0];
      throw new Error(
        `${index}: shard "${shard}" is missing (it holds "${example}" and others); the download may be incomplete`,
      );
    }
    const contents = readSafetensors(file);
    for (const [name, t] of contents.tensors) {
      if (weightMap.get(name) !== shard)
        throw new Error(`${file}: tensor "${name}" is not mapped to this shard in ${index}`);
      tensors.set(name, t);
      stored.set(name, contents.stored.get(name)!);
    }
  }
  const absent = [...weightMap].find(([name]) => !tensors.has(name));
  if (absent) throw new Error(`${index}: tensor "${absent[0]}" is mapped to "${absent[1]}", which does not hold it`);
  return { tensors, stored, file: index };
}

/** The index's weight_map, tensor → shard file name, each shard a file of this folder. */
export function readWeightMap(index: string): Map<string, string> {
  const weightMap = readJsonObjectFile(index).weight_map;
  if (!isPlainObject(weightMap))
    throw new Error(`${index}: weight_map must be an object mapping tensor names to shard files`);
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || shard !== path.basename(shard) || !shard.endsWith('.safetensors')) {
      throw new Error(
        `${index}: weight_map["${name}"] must name a .safetensors file in the same folder, got ${JSON.stringify(shard)}`,
      );
    }
  }
  return new Map(Object.entries(weightMap as Record<string, string>));
}

/**
 * Writes `tensors` into the new folder `dir`, float32 stored as `floats`: one model.safetensors,
 * or shards of at most `maxShardSize` bytes (a larger tensor gets a shard of its own) and the index.
 */
export function writeWeights(
  dir: string,
  tensors: Map<string, NamedTensor>,
  floats: FloatDType,
  maxShardSize = MAX_SHARD_SIZE,
): void {
  const shards = splitShards(tensors, floats, maxShardSize);
  if (shards.length === 1) {
    writeSafetensors(path.join(dir, FILES.model), tensors, { format: 'pt' }, floats);
    return;
  }
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    writeSafetensors(path.join(dir, file), shard, { format: 'pt' }, floats);
    for (const name of shard.keys()) weightMap[name] = file;
  });
  const index = { metadata: { total_size: storedSize(tensors.values(), floats) }, weight_map: weightMap };
  writeJsonFile(path.join(dir, FILES.modelIndex), index);
}

/** Tensors in order, a new shard started where the next would pass `maxShardSize`, as transformers splits. */
type Tensors = Map<string, NamedTensor>;

function splitShards(tensors: Tensors, floats: FloatDType, maxShardSize: number): Tensors[] {
  const shards: Tensors[] = [new Map()];
  let size = 0;
  for (const [name, t] of tensors) {
    const bytes = storedSize([t], floats);
    if (size > 0 && size + bytes > maxShardSize) {
      shards.push(new Map());
      size = 0;
    }
    shards[shards.length - 1].set(name, t);
    size += bytes;
  }
  return shards;
}

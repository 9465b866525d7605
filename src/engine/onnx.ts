/**
 * Emits a graph of Tensors as an ONNX model (opset 17, default domain only). Graph inputs are the
 * reachable 'Input' tensors; weights are always inputs, so models of any size stay far from
 * protobuf's 2 GB limit and no weights are baked into graphs. Encoding uses protobufjs with the
 * subset of onnx.proto that we emit (field numbers as in the ONNX spec).
 *
 * Every node's output shape is declared (value_info), symbolic sizes by name ("B*T" for a [B, T, D]
 * tensor reshaped to [-1, D]). onnxruntime reuses a freed buffer, or an input's in place, only for
 * a value it knows to be of the same size, and its own shape inference gives a reshape to -1 a size
 * without a name: every op after one took a fresh buffer (npm run bench:sft --preset gpt2-124m:
 * peak RSS 3041 → 2719 MB, four [tokens, vocab] buffers in the loss down to two).
 */
import * as protobuf from 'protobufjs';
import { ONNX_DTYPE } from './ops';
import { AttrValue, DType, Shape, ShapeError, Tensor, topoSort } from './tensor';

export const OPSET = 17;
const IR_VERSION = 8;

export interface ValueSpec {
  name: string;
  dtype: DType;
  shape: Shape;
}

export interface OnnxModel {
  bytes: Uint8Array;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
}

/** Builds the ONNX model computing `outputs` (name → tensor). */
export function toOnnx(outputs: Record<string, Tensor>, graphName = 'main'): OnnxModel {
  const outList = Object.entries(outputs);
  const order = topoSort(outList.map(([, t]) => t));
  const names = new Map<number, string>();
  const inputs: ValueSpec[] = [];
  const initializer: object[] = [];
  const nodes: object[] = [];
  const shapes: ValueSpec[] = [];

  for (const t of order) {
    if (t.op !== 'Input') continue;
    if (inputs.some((i) => i.name === t.name)) throw new ShapeError(`two different inputs are named "${t.name}"`);
    names.set(t.id, t.name!);
    inputs.push({ name: t.name!, dtype: t.dtype, shape: t.shape });
  }
  // Outputs take their names from the node that computes them, unless that tensor is an input,
  // a constant or another output's value: those get an Identity node.
  const aliased: [string, Tensor][] = [];
  for (const [name, t] of outList) {
    if (inputs.some((i) => i.name === name)) throw new ShapeError(`output "${name}" has the name of an input`);
    if (t.op === 'Input' || t.op === 'Constant' || names.has(t.id)) aliased.push([name, t]);
    else names.set(t.id, name);
  }
  for (const t of order) {
    if (t.op === 'Input') continue;
    const name = names.get(t.id) ?? `${t.op}_${t.id}`;
    names.set(t.id, name);
    if (t.op === 'Constant') initializer.push(tensorProto(name, t));
    else {
      if (!(name in outputs)) shapes.push({ name, dtype: t.dtype, shape: t.shape });
      nodes.push(
        nodeProto(
          t.op,
          t.inputs.map((i) => names.get(i.id)!),
          name,
          t.attrs,
          Number(t.meta.unusedOutputs ?? 0),
        ),
      );
    }
  }
  for (const [name, t] of aliased) nodes.push(nodeProto('Identity', [names.get(t.id)!], name, {}));

  const outSpecs = outList.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
  const model = {
    irVersion: IR_VERSION,
    producerName: 'rlhf-studio',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: {
      name: graphName,
      node: nodes,
      initializer,
      input: inputs.map(valueInfo),
      output: outSpecs.map(valueInfo),
      valueInfo: shapes.map(valueInfo),
    },
  };
  const ModelProto = schema().lookupType('onnx.ModelProto');
  return { bytes: ModelProto.encode(ModelProto.fromObject(model)).finish(), inputs, outputs: outSpecs };
}

/** One node; an op whose schema requires outputs past the first gets `unused` more, named after it. */
function nodeProto(op: string, inputs: string[], output: string, attrs: Record<string, AttrValue>, unused = 0): object {
  return {
    opType: op,
    name: output,
    input: inputs,
    output: [output, ...Array.from({ length: unused }, (_, i) => `${output}_unused_${i + 1}`)],
    attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
  };
}

// AttributeProto.AttributeType
const FLOAT = 1,
  INT = 2,
  STRING = 3,
  INTS = 7;

/** Attributes that ONNX types as float even when the value is a whole number. */
const FLOAT_ATTRS = new Set(['epsilon']);

/** Numbers become INT attributes, except non-integers and the float-typed names above. */
function attribute(name: string, v: AttrValue): object {
  if (typeof v === 'string') return { name, type: STRING, s: Buffer.from(v) };
  if (Array.isArray(v)) return { name, type: INTS, ints: v };
  return Number.isInteger(v) && !FLOAT_ATTRS.has(name) ? { name, type: INT, i: v } : { name, type: FLOAT, f: v };
}

function tensorProto(name: string, t: Tensor): object {
  const d = t.data!;
  return {
    name,
    dims: t.shape,
    dataType: ONNX_DTYPE[t.dtype],
    rawData: new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
  };
}

function valueInfo(v: ValueSpec): object {
  const dim = v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name: v.name, type: { tensorType: { elemType: ONNX_DTYPE[v.dtype], shape: { dim } } } };
}

/** The messages of onnx.proto that we emit, with their field numbers. */
const ONNX_MESSAGES = {
  ModelProto: {
    fields: {
      irVersion: { type: 'int64', id: 1 },
      producerName: { type: 'string', id: 2 },
      graph: { type: 'GraphProto', id: 7 },
      opsetImport: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
    },
  },
  OperatorSetIdProto: { fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } } },
  GraphProto: {
    fields: {
      node: { rule: 'repeated', type: 'NodeProto', id: 1 },
      name: { type: 'string', id: 2 },
      initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
      input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
      output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
      valueInfo: { rule: 'repeated', type: 'ValueInfoProto', id: 13 },
    },
  },
  NodeProto: {
    fields: {
      input: { rule: 'repeated', type: 'string', id: 1 },
      output: { rule: 'repeated', type: 'string', id: 2 },
      name: { type: 'string', id: 3 },
      opType: { type: 'string', id: 4 },
      attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
    },
  },
  AttributeProto: {
    fields: {
      name: { type: 'string', id: 1 },
      f: { type: 'float', id: 2 },
      i: { type: 'int64', id: 3 },
      s: { type: 'bytes', id: 4 },
      ints: { rule: 'repeated', type: 'int64', id: 8 },
      type: { type: 'int32', id: 20 },
    },
  },
  TensorProto: {
    fields: {
      dims: { rule: 'repeated', type: 'int64', id: 1 },
      dataType: { type: 'int32', id: 2 },
      name: { type: 'string', id: 8 },
      rawData: { type: 'bytes', id: 9 },
    },
  },
  ValueInfoProto: { fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 } } },
  TypeProto: {
    fields: { tensorType: { type: 'TensorTypeProto', id: 1 } },
  },
  TensorTypeProto: {
    fields: { elemType: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } },
  },
  TensorShapeProto: { fields: { dim: { rule: 'repeated', type: 'Dimension', id: 1 } } },
  Dimension: { fields: { dimValue: { type: 'int64', id: 1 }, dimParam: { type: 'string', id: 2 } } },
};

let root: protobuf.Root | undefined;

/** The part of onnx.proto that we emit. */
function schema(): protobuf.Root {
  root ??= protobuf.Root.fromJSON({ nested: { onnx: { nested: ONNX_MESSAGES } } });
  return root;
}

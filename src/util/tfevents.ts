/**
 * TensorBoard's event-file format: a sequence of records, each
 *   uint64 length (little-endian) · uint32 masked CRC-32C of the length · data · uint32 masked CRC-32C of the data,
 * whose data is an `Event` protobuf (tensorflow/core/util/event.proto; Summary from summary.proto).
 * Encoding and decoding use protobufjs with the messages' fields as TensorBoard declares them; only
 * the fields written or read here are declared.
 */
import * as protobuf from 'protobufjs';
import * as crc32c from 'crc-32/crc32c';

/** TensorFlow's DataType for strings (DT_STRING), the dtype of text summaries. */
const DT_STRING = 7;

const MESSAGES = {
  Event: {
    oneofs: { what: { oneof: ['fileVersion', 'summary', 'sessionLog'] } },
    fields: {
      wallTime: { type: 'double', id: 1 },
      step: { type: 'int64', id: 2 },
      fileVersion: { type: 'string', id: 3 },
      summary: { type: 'Summary', id: 5 },
      sessionLog: { type: 'SessionLog', id: 7 },
    },
  },
  Summary: { fields: { value: { rule: 'repeated', type: 'SummaryValue', id: 1 } } },
  SummaryValue: {
    oneofs: { value: { oneof: ['simpleValue', 'tensor'] } },
    fields: {
      tag: { type: 'string', id: 1 },
      simpleValue: { type: 'float', id: 2 },
      tensor: { type: 'TensorProto', id: 8 },
      metadata: { type: 'SummaryMetadata', id: 9 },
    },
  },
  SummaryMetadata: { fields: { pluginData: { type: 'PluginData', id: 1 } } },
  PluginData: { fields: { pluginName: { type: 'string', id: 1 }, content: { type: 'bytes', id: 2 } } },
  TensorProto: {
    fields: {
      dtype: { type: 'int32', id: 1 },
      tensorShape: { type: 'TensorShapeProto', id: 2 },
      stringVal: { rule: 'repeated', type: 'bytes', id: 8 },
    },
  },
  TensorShapeProto: { fields: { dim: { rule: 'repeated', type: 'Dim', id: 2 } } },
  Dim: { fields: { size: { type: 'int64', id: 1 } } },
  SessionLog: { fields: { status: { type: 'int32', id: 1 } } },
};

/** SessionLog.START: TensorBoard drops the events of later steps written before it (a resumed run's). */
export const SESSION_START = 1;

let eventType: protobuf.Type | undefined;
function eventMessage(): protobuf.Type {
  eventType ??= protobuf.Root.fromJSON({ nested: { tensorboard: { nested: MESSAGES } } }).lookupType(
    'tensorboard.Event',
  );
  return eventType;
}

/** An event as written and read here. */
export interface TfEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  /** Scalar summaries by tag. */
  scalars?: Record<string, number>;
  /** Text summaries (TensorBoard's text plugin, Markdown) by tag. */
  texts?: Record<string, string>;
  sessionStart?: boolean;
}

function summaryOf(event: TfEvent): object | undefined {
  const scalars = Object.entries(event.scalars ?? {}).map(([tag, simpleValue]) => ({ tag, simpleValue }));
  const texts = Object.entries(event.texts ?? {}).map(([tag, text]) => ({
    tag,
    metadata: { pluginData: { pluginName: 'text' } },
    tensor: { dtype: DT_STRING, tensorShape: {}, stringVal: [Buffer.from(text, 'utf8')] },
  }));
  const value = [...scalars, ...texts];
  return value.length ? { value } : undefined;
}

/** The record framing of an encoded event. */
export function encodeEvent(event: TfEvent): Buffer {
  const type = eventMessage();
  const message = type.fromObject({
    wallTime: event.wallTime,
    step: event.step,
    fileVersion: event.fileVersion,
    summary: summaryOf(event),
    sessionLog: event.sessionStart ? { status: SESSION_START } : undefined,
  });
  const data = Buffer.from(type.encode(message).finish());
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(data.length));
  return Buffer.concat([length, maskedCrc(length), data, maskedCrc(data)]);
}

/** CRC-32C of the bytes, rotated right by 15 and offset as TensorFlow's record format masks it. */
function maskedCrc(bytes: Uint8Array): Buffer {
  const crc = crc32c.buf(bytes) >>> 0;
  const masked = (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
  const out = Buffer.alloc(4);
  out.writeUInt32LE(masked);
  return out;
}

/** What reading an event file gave: its events, and why it stopped early if it did. */
export interface ReadEvents {
  events: TfEvent[];
  /** A truncated or corrupted record ended the reading here (the events before it are kept). */
  problem?: string;
}

/** Every event of an event file's bytes, checking each record's CRCs. */
export function decodeEvents(bytes: Buffer): ReadEvents {
  const events: TfEvent[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 12 > bytes.length) return { events, problem: `a truncated record header at byte ${at}` };
    const header = bytes.subarray(at, at + 8);
    if (!maskedCrc(header).equals(bytes.subarray(at + 8, at + 12)))
      return { events, problem: `a corrupted record length at byte ${at}` };
    const length = Number(header.readBigUInt64LE());
    const end = at + 12 + length + 4;
    if (end > bytes.length) return { events, problem: `a truncated record at byte ${at}` };
    const data = bytes.subarray(at + 12, at + 12 + length);
    if (!maskedCrc(data).equals(bytes.subarray(end - 4, end)))
      return { events, problem: `a record failing its CRC at byte ${at}` };
    events.push(eventFromMessage(data));
    at = end;
  }
  return { events };
}

interface DecodedValue {
  tag: string;
  simpleValue?: number;
  tensor?: { dtype?: number; stringVal?: Uint8Array[] };
  metadata?: { pluginData?: { pluginName?: string } };
}

function eventFromMessage(data: Uint8Array): TfEvent {
  const type = eventMessage();
  const message = type.toObject(type.decode(data), { longs: Number }) as {
    wallTime?: number;
    step?: number;
    fileVersion?: string;
    summary?: { value?: DecodedValue[] };
    sessionLog?: { status?: number };
  };
  const event: TfEvent = { wallTime: message.wallTime ?? 0, step: message.step ?? 0 };
  if (message.fileVersion) event.fileVersion = message.fileVersion;
  if (message.sessionLog?.status === SESSION_START) event.sessionStart = true;
  for (const value of message.summary?.value ?? []) {
    if (value.simpleValue !== undefined) (event.scalars ??= {})[value.tag] = value.simpleValue;
    else if (value.tensor?.dtype === DT_STRING && value.tensor.stringVal?.length)
      (event.texts ??= {})[value.tag] = value.tensor.stringVal.map((s) => Buffer.from(s).toString('utf8')).join('\n');
  }
  return event;
}

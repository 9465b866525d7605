"""Reads a TensorBoard event file without TensorFlow or protobuf: the record framing (length, masked
CRC-32C of the length, data, masked CRC-32C of the data) and the few Event / Summary fields a
training log uses, decoded from the protobuf wire format by hand. Prints one JSON object per event:
{"wall_time", "step", "file_version"?, "scalars"?: {tag: value}, "texts"?: {tag: text},
"session_status"?}. Exits 1 naming the byte offset if a record is truncated or fails its CRC.

    python3 tfevents_read.py events.out.tfevents.*
"""
import json
import struct
import sys


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def fields(buf):
    """(field number, wire type, value) for each field of a message: ints, bytes, or raw 4/8 bytes."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, wire, value


def summary_value(buf, event):
    tag, scalar, strings = None, None, []
    for number, _, value in fields(buf):
        if number == 1:
            tag = value.decode()
        elif number == 2:
            scalar = struct.unpack("<f", value)[0]
        elif number == 8:  # TensorProto: string_val = 8
            strings += [v.decode() for n, _, v in fields(value) if n == 8]
    if scalar is not None:
        event.setdefault("scalars", {})[tag] = scalar
    elif strings:
        event.setdefault("texts", {})[tag] = "\n".join(strings)


def event_of(data):
    event = {}
    for number, _, value in fields(data):
        if number == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2:
            event["step"] = value
        elif number == 3:
            event["file_version"] = value.decode()
        elif number == 5:
            for n, _, v in fields(value):
                if n == 1:
                    summary_value(v, event)
        elif number == 7:
            event["session_status"] = dict((n, v) for n, _, v in fields(value)).get(1, 0)
    event.setdefault("step", 0)
    return event


def main(path):
    data = open(path, "rb").read()
    at = 0
    while at < len(data):
        header = data[at : at + 8]
        if len(header) < 8 or at + 12 > len(data):
            sys.exit("truncated record header at byte %d" % at)
        if struct.unpack("<I", data[at + 8 : at + 12])[0] != masked(header):
            sys.exit("length CRC mismatch at byte %d" % at)
        (length,) = struct.unpack("<Q", header)
        body = data[at + 12 : at + 12 + length]
        end = at + 12 + length + 4
        if end > len(data):
            sys.exit("truncated record at byte %d" % at)
        if struct.unpack("<I", data[end - 4 : end])[0] != masked(body):
            sys.exit("data CRC mismatch at byte %d" % at)
        print(json.dumps(event_of(body)))
        at = end


if __name__ == "__main__":
    main(sys.argv[1])
